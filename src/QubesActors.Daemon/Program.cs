using System.CommandLine;
using Akka.Configuration;
using Microsoft.Extensions.Hosting;
using QubesActors.Daemon;
using QubesActors.Runtime.Backend;

var stateDir = new Option<string?>("--state-dir") { Description = "State directory (journal, backend state, socket). Default: qubesd.state-dir (./state)." };
var configFile = new Option<string?>("--config") { Description = "HOCON file merged over config/qubesd.conf (e.g. config/qubesd.postgres.conf)." };
var sets = new Option<string[]>("--set") { Description = "Override one setting: key=value (repeatable), e.g. --set qubesd.journal.provider=postgresql.", AllowMultipleArgumentsPerToken = false };
var printConfig = new Option<bool>("--print-config") { Description = "Print the effective settings and exit." };
var check = new Option<bool>("--check") { Description = "Recover from the journal without starting anything, verify every chain, print the qubes; non-zero on any inconsistency." };
var json = new Option<bool>("--json") { Description = "With --check: JSON output." };
var socket = new Option<string?>("--socket") { Description = "Unix socket of the Admin API. Default: qubesd.socket, else <state-dir>/qubesd.sock." };

var backendOption = new Option<string?>("--backend") { Description = "auto | sandbox | simulated. Default: qubesd.backend (auto: sandbox on Linux as root with bubblewrap, else simulated)." };
var policySocket = new Option<string?>("--policy-socket") { Description = "Serve the qrexec-policy-daemon protocol on this Unix socket. Default: qubesd.policy.socket (empty = not served)." };

var root = new RootCommand("qubesd: the QubesActors supervisor daemon") { stateDir, configFile, sets, printConfig, check, json, socket, policySocket, backendOption };
root.SetAction(parse =>
{
    DaemonSettings settings;
    try
    {
        string[] overrides = [.. parse.GetValue(sets) ?? [], .. parse.GetValue(backendOption) is { } b ? [$"qubesd.backend={b}"] : Array.Empty<string>()];
        settings = DaemonSettings.Load(parse.GetValue(configFile), parse.GetValue(stateDir), overrides);
    }
    catch (Exception e) when (e is ConfigurationException or IOException or FormatException)
    {
        Console.Error.WriteLine($"qubesd: error: {e.Message}");
        return 2;
    }
    if (parse.GetValue(printConfig))
    {
        Console.WriteLine(settings.Describe());
        return 0;
    }
    if (parse.GetValue(check))
    {
        try
        {
            return CheckCommand.Run(settings, parse.GetValue(json), Console.Out);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or IOException)
        {
            Console.Error.WriteLine($"qubesd: error: cannot read the journal: {e.Message}");
            return 2;
        }
    }
    AdminApiHosting adminApi;
    PolicyHosting policy;
    try
    {
        adminApi = AdminApiHosting.From(settings, parse.GetValue(socket));
        // Refuse before recovery if another daemon serves this socket (two daemons must never share a journal).
        QubesActors.AdminApi.Server.AdminSocketServer.EnsureAvailable(adminApi.SocketPath);
        policy = PolicyHosting.From(settings, parse.GetValue(policySocket));
        if (policy.SocketPath is { } policyPath)
            QubesActors.AdminApi.Server.AdminSocketServer.EnsureAvailable(policyPath);
    }
    catch (Exception e) when (e is ConfigurationException or IOException or UnauthorizedAccessException or QubesActors.AdminApi.Server.AdminSocketInUseException)
    {
        Console.Error.WriteLine($"qubesd: error: {e.Message}");
        return 3;
    }
    // One daemon per state directory, whatever socket it serves: two writers would fork every stream's chain.
    FileStream stateLock;
    try
    {
        Directory.CreateDirectory(settings.StateDir);
        stateLock = new FileStream(Path.Combine(settings.StateDir, "qubesd.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"qubesd: error: {settings.StateDir} is in use by another qubesd ({e.Message})");
        return 3;
    }
    using var _ = stateLock;
    IDomainBackend backend;
    QubesActors.Daemon.Qrexec.IQrexecHosting? qrexec = null;
    try
    {
        var chosen = SandboxHosting.Resolve(settings.Backend);
        if (chosen == "sandbox" && !OperatingSystem.IsLinux())
            throw new ConfigurationException(SandboxHosting.Unavailable()!);
        if (OperatingSystem.IsLinux() && chosen == "sandbox")
        {
            var sandbox = SandboxHosting.CreateAsync(settings, CancellationToken.None).GetAwaiter().GetResult();
            qrexec = SandboxHosting.Qrexec(settings, sandbox);
            backend = sandbox;
        }
        else
            backend = new SimulatedBackend(settings.SimulatedBackendOptions());
        Console.Error.WriteLine($"qubesd: backend {backend.Name}");
    }
    catch (Exception e) when (e is ConfigurationException or QubesActors.Sandbox.SandboxException or IOException or UnauthorizedAccessException
                                  or QubesActors.Runtime.Backend.BackendException)
    {
        Console.Error.WriteLine($"qubesd: error: {e.Message}");
        return 3;
    }
    using var disposeBackend = backend as IDisposable;
    using var host = QubesHost.Build(settings, backend, adminApi: adminApi, policy: policy, qrexec: qrexec);
    host.Run();
    // 0 after a clean stop; StartupService sets a non-zero code when it stops the daemon itself (e.g. the socket cannot be served).
    return Environment.ExitCode;
});
return root.Parse(args).Invoke();
