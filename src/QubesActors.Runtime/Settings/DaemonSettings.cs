using System.Collections.Immutable;
using Akka.Configuration;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Runtime.Settings;

/// <summary>
/// The effective settings: config/qubesd.conf, then --config, then QUBESD_* environment variables, then --set,
/// each layer over the previous one. Paths are resolved here so nothing else knows about machine paths.
/// It lives in the runtime, not the daemon, so that qubes-audit resolves the journal exactly as qubesd does
/// without pulling in the host.
/// </summary>
public sealed record DaemonSettings(Config Config, string StateDir, string ConfigDir, JournalSettings Journal, string LayoutFile, string Backend)
{
    public static readonly IReadOnlyDictionary<string, string> EnvironmentOverrides = new Dictionary<string, string>
    {
        ["QUBESD_STATE_DIR"] = "qubesd.state-dir",
        ["QUBESD_BACKEND"] = "qubesd.backend",
        ["QUBESD_JOURNAL_PROVIDER"] = "qubesd.journal.provider",
        ["QUBESD_JOURNAL_CONNECTION_STRING"] = "qubesd.journal.connection-string",
        ["QUBESD_LOGLEVEL"] = "akka.loglevel",
    };

    /// <summary>The directory holding the default qubesd.conf: next to the binary, else the source tree's config/.</summary>
    public static string DefaultConfigDir()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "config");
        return File.Exists(Path.Combine(beside, "qubesd.conf")) ? beside : Path.GetFullPath("config");
    }

    public static DaemonSettings Load(string? configFile, string? stateDir, IEnumerable<string> sets, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var configDir = DefaultConfigDir();
        var config = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(configDir, "qubesd.conf")));
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
                throw new ConfigurationException($"config file not found: {configFile}");
            config = ConfigurationFactory.ParseString(File.ReadAllText(configFile)).WithFallback(config);
        }
        var env = environment ?? Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
        foreach (var (variable, key) in EnvironmentOverrides)
            if (env.TryGetValue(variable, out var value) && !string.IsNullOrEmpty(value))
                config = Override(config, key, value);
        foreach (var set in sets)
        {
            var eq = set.IndexOf('=');
            if (eq <= 0)
                throw new ConfigurationException($"--set expects key=value, got '{set}'");
            config = Override(config, set[..eq].Trim(), set[(eq + 1)..]);
        }
        if (stateDir is not null)
            config = Override(config, "qubesd.state-dir", stateDir);

        var state = Path.GetFullPath(config.GetString("qubesd.state-dir"));
        var provider = config.GetString("qubesd.journal.provider", "sqlite").ToLowerInvariant();
        var journal = provider switch
        {
            "sqlite" => JournalSettings.SqliteFile(Path.Combine(state, config.GetString("qubesd.journal.sqlite-file", "journal.db"))),
            "postgresql" or "postgres" => new JournalSettings(JournalProvider.PostgreSql, RequireNonEmpty(config, "qubesd.journal.connection-string")),
            _ => throw new ConfigurationException($"qubesd.journal.provider must be sqlite or postgresql, not '{provider}'"),
        };
        var layout = config.GetString("qubesd.layout", "layout.default.json");
        var backend = config.GetString("qubesd.backend", "auto");
        if (backend is not ("auto" or "simulated" or "sandbox"))
            throw new ConfigurationException($"qubesd.backend must be auto, sandbox or simulated, not '{backend}'");
        return new DaemonSettings(config, state, configDir, journal, Path.IsPathRooted(layout) ? layout : Path.Combine(configDir, layout), backend);
    }

    private static string RequireNonEmpty(Config config, string key)
    {
        var value = config.GetString(key, "");
        return value.Length > 0 ? value : throw new ConfigurationException($"{key} must be set");
    }

    private static Config Override(Config config, string key, string value) =>
        ConfigurationFactory.ParseString($"{key} = \"{value.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"").WithFallback(config);

    public SimulatedBackendOptions SimulatedBackendOptions()
    {
        var devices = ImmutableDictionary.CreateBuilder<string, ImmutableArray<BackendDevice>>();
        var list = Config.GetValue("qubesd.simulated.devices")?.GetArray() ?? [];
        foreach (var group in list.Select(v => v.GetObject())
                     .Select(o => new BackendDevice(o.GetKey("class").GetString(), o.GetKey("backend").GetString(), o.GetKey("port").GetString(),
                         o.GetKey("id").GetString(), o.GetKey("description").GetString(),
                         Optional(o, "vendor"), Optional(o, "product"), Optional(o, "interfaces") ?? ""))
                     .GroupBy(d => d.Backend))
            devices[group.Key] = [.. group];
        return new SimulatedBackendOptions
        {
            StartLatency = Config.GetTimeSpan("qubesd.simulated.start-latency", TimeSpan.Zero),
            StopLatency = Config.GetTimeSpan("qubesd.simulated.stop-latency", TimeSpan.Zero),
            OpLatency = Config.GetTimeSpan("qubesd.simulated.op-latency", TimeSpan.Zero),
            StateFile = Path.Combine(StateDir, "simulated-backend.json"),
            Devices = devices.ToImmutable(),
        };
    }

    /// <summary>The Admin API socket unless --socket names another: qubesd.socket, else &lt;state-dir&gt;/qubesd.sock.</summary>
    public string SocketPath => Config.GetString("qubesd.socket", "") is { Length: > 0 } configured
        ? Path.GetFullPath(configured)
        : Path.Combine(StateDir, "qubesd.sock");

    /// <summary>How often the journal sealer seals what was written since its last seal (docs/audit-verify.md).</summary>
    public TimeSpan SealInterval => Config.GetTimeSpan("qubesd.journal.seal-interval", TimeSpan.FromSeconds(1));

    /// <summary>How long a gap in the journal's ordering holds the seal back before it counts as a rolled-back write.</summary>
    public TimeSpan SealGapTimeout => Config.GetTimeSpan("qubesd.journal.seal-gap-timeout", TimeSpan.FromSeconds(10));

    /// <summary>qubesd.policy.*: the directories (config-relative or state-relative when not rooted).</summary>
    public Runtime.Policy.PolicyDirectories PolicyDirectories => new(
        Config.GetString("qubesd.policy.runtime-dir", "") is { Length: > 0 } runtime ? Path.GetFullPath(runtime) : Path.Combine(StateDir, "policy.d"),
        InConfigDir(Config.GetString("qubesd.policy.config-dir", "policy.d")));

    public string? PolicySeedDir => Config.GetString("qubesd.policy.seed-dir", "") is { Length: > 0 } seed ? InConfigDir(seed) : null;

    public string? PolicyCompatDir => Config.GetString("qubesd.policy.compat-dir", "") is { Length: > 0 } compat ? InConfigDir(compat) : null;

    private string InConfigDir(string path) => Path.IsPathRooted(path) ? path : Path.Combine(ConfigDir, path);

    /// <summary>The settings as --print-config shows them: the qubesd section and Akka's log settings, secrets masked.</summary>
    public string Describe()
    {
        static string Mask(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"(?i)(password\s*=\s*)[^;""]*", "$1****");
        var masked = Mask(Journal.ConnectionString);
        return $"""
            # effective settings
            qubesd.state-dir = "{StateDir}"
            qubesd.layout = "{LayoutFile}"
            qubesd.backend = {Backend}
            qubesd.journal.provider = {Journal.Provider.ToString().ToLowerInvariant()}
            qubesd.journal.connection-string = "{masked}"
            qubesd.journal.seal-interval = {SealInterval.TotalMilliseconds:0}ms
            qubesd.journal.seal-gap-timeout = {SealGapTimeout.TotalMilliseconds:0}ms
            qubesd.socket = "{SocketPath}"
            qubesd.admin-api.read-timeout = {Config.GetTimeSpan("qubesd.admin-api.read-timeout", TimeSpan.FromSeconds(30)).TotalSeconds:0}s
            qubesd.admin-api.max-connections = {Config.GetInt("qubesd.admin-api.max-connections", 64)}
            qubesd.admin-api.command-timeout = {Config.GetTimeSpan("qubesd.admin-api.command-timeout", TimeSpan.FromMinutes(2)).TotalSeconds:0}s
            qubesd.policy.runtime-dir = "{PolicyDirectories.RuntimeDir}"
            qubesd.policy.config-dir = "{PolicyDirectories.ConfigDir}"
            qubesd.policy.socket = "{Config.GetString("qubesd.policy.socket", "")}"
            akka.loglevel = {Config.GetString("akka.loglevel")}

            # merged configuration
            {Mask(Config.GetConfig("qubesd").Root.ToString())}
            """;
    }

    private static string? Optional(Akka.Configuration.Hocon.HoconObject o, string key) =>
        o.Items.TryGetValue(key, out var value) ? value.GetString() : null;
}
