using System.CommandLine;
using Akka.Configuration;
using QubesActors.Audit.Log;
using QubesActors.Runtime.Settings;

namespace QubesActors.Audit;

/// <summary>The qubes-audit command tree: thin shells over the reader, the filter and the formats.</summary>
public static class AuditApp
{
    public const int ExitOk = 0;
    public const int ExitError = 1;
    public const int ExitUsage = 2;

    internal static readonly Option<string?> StateDir = new("--state-dir")
    {
        Description = "qubesd's state directory (its journal.db). Default: as qubesd resolves it (qubesd.state-dir, QUBESD_STATE_DIR).",
        Recursive = true,
    };

    internal static readonly Option<string?> ConfigFile = new("--config")
    {
        Description = "HOCON file merged over config/qubesd.conf, as given to qubesd (e.g. config/qubesd.postgres.conf).",
        Recursive = true,
    };

    internal static readonly Option<string[]> Sets = new("--set")
    {
        Description = "Override one setting as with qubesd --set key=value (repeatable).",
        Recursive = true,
    };

    public static RootCommand Build(AuditContext context)
    {
        var root = new RootCommand("qubes-audit: read qubesd's journal (what happened to every qube, who caused it)")
        {
            StateDir, ConfigFile, Sets,
        };
        root.Subcommands.Add(LogCommand.Create(context));
        root.Subcommands.Add(Show.ShowCommand.Create(context));
        root.Subcommands.Add(Stats.StatsCommand.Create(context));
        root.Subcommands.Add(Verify.VerifyCommand.Create(context));
        root.Subcommands.Add(Report.ReportCommand.Create(context));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, AuditContext context, CancellationToken ct = default)
    {
        var parse = Build(context).Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var error in parse.Errors)
                await context.Error.WriteLineAsync($"qubes-audit: error: {error.Message}").ConfigureAwait(false);
            return ExitUsage;
        }
        var configuration = new InvocationConfiguration { Output = context.Writer, Error = context.Error, ProcessTerminationTimeout = null };
        return await parse.InvokeAsync(configuration, ct).ConfigureAwait(false);
    }

    /// <summary>The settings exactly as qubesd resolves them (config/qubesd.conf, --config, QUBESD_*, --set, --state-dir).</summary>
    internal static DaemonSettings Settings(ParseResult parse, AuditContext context) =>
        DaemonSettings.Load(parse.GetValue(ConfigFile), parse.GetValue(StateDir), parse.GetValue(Sets) ?? [], context.Environment);

    internal static bool IsSettingsError(Exception e) => e is ConfigurationException or IOException or FormatException;
}
