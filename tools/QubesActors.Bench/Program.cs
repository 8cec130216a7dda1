using System.CommandLine;
using QubesActors.Bench;

// Benchmarks of the real qubesd host (QubesHost.Build) on the zero-latency simulated backend. README.md has the figures.
var commandLine = Report.CommandLine(args);

Option<string> Provider() => new("--provider") { Description = "Journal: sqlite | postgresql", DefaultValueFactory = _ => "sqlite" };
Option<string?> ConnectionString() => new("--connection-string") { Description = "PostgreSQL server (Npgsql); default: QUBES_TEST_POSTGRES. A fresh database is created on it per run." };
string? Server(string? given) => string.IsNullOrEmpty(given) ? Environment.GetEnvironmentVariable("QUBES_TEST_POSTGRES") : given;
string CheckProvider(string p) => p.ToLowerInvariant() switch
{
    "sqlite" => "sqlite",
    "postgresql" or "postgres" => "postgresql",
    _ => throw new ArgumentException($"--provider must be sqlite or postgresql, not '{p}'"),
};

// lifecycle
var lcQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 1000 };
var lcConcurrency = new Option<int>("--concurrency") { DefaultValueFactory = _ => 64 };
var lcProvider = Provider();
var lcConnection = ConnectionString();
var lifecycle = new Command("lifecycle", "create, start, pause, unpause, shutdown(wait) of N AppVMs: ops/s and p50/p99 per phase") { lcQubes, lcConcurrency, lcProvider, lcConnection };
lifecycle.SetAction((p, _) => LifecycleBench.RunAsync(p.GetValue(lcQubes), p.GetValue(lcConcurrency), CheckProvider(p.GetValue(lcProvider)!), Server(p.GetValue(lcConnection)), commandLine));

// recovery
var recQubes = new Option<string>("--qubes") { Description = "Comma-separated sizes", DefaultValueFactory = _ => "100,1000,10000" };
var recEvents = new Option<int>("--events") { DefaultValueFactory = _ => 50 };
var recRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
var recConcurrency = new Option<int>("--concurrency") { Description = "Qubes whose scripts run at once while generating", DefaultValueFactory = _ => 128 };
var recProvider = Provider();
var recConnection = ConnectionString();
var recovery = new Command("recovery", "journal of N qubes x ~50 events; new process until every qube answers PingQube") { recQubes, recEvents, recProvider, recConnection, recRuns, recConcurrency };
recovery.SetAction((p, _) => RecoveryBench.RunAsync([.. p.GetValue(recQubes)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)], p.GetValue(recEvents),
    CheckProvider(p.GetValue(recProvider)!), Server(p.GetValue(recConnection)), p.GetValue(recRuns), p.GetValue(recConcurrency), commandLine));

// memory
var memQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 1000 };
var memEvents = new Option<int>("--events") { DefaultValueFactory = _ => 50 };
var memProvider = Provider();
var memConnection = ConnectionString();
var memory = new Command("memory", "VmRSS of an idle qubesd (child process) holding N qubes, after forced GC and 2 s idle") { memQubes, memEvents, memProvider, memConnection };
memory.SetAction((p, _) => MemoryBench.RunAsync(p.GetValue(memQubes), p.GetValue(memEvents), CheckProvider(p.GetValue(memProvider)!), Server(p.GetValue(memConnection)), commandLine));

// adminapi
var apiQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 1000 };
var apiConcurrency = new Option<string>("--concurrency") { Description = "Comma-separated client counts", DefaultValueFactory = _ => "1,16" };
var apiReads = new Option<int>("--reads") { Description = "admin.vm.property.GetAll calls per concurrency", DefaultValueFactory = _ => 20000 };
var apiLists = new Option<int>("--lists") { Description = "admin.vm.List calls per concurrency", DefaultValueFactory = _ => 1000 };
var apiCycles = new Option<int>("--cycles") { Description = "Start + Shutdown+wait pairs per concurrency (distinct qubes)", DefaultValueFactory = _ => 500 };
var apiEnv = new Option<string[]>("--daemon-env") { Description = "NAME=VALUE for the qubesd process only (repeatable), e.g. a runtime knob", AllowMultipleArgumentsPerToken = false };
var adminapi = new Command("adminapi", "a qubesd process holding N qubes: admin.vm.List, property.GetAll, Start + Shutdown+wait over the socket, 1 and 16 clients")
    { apiQubes, apiConcurrency, apiReads, apiLists, apiCycles, apiEnv };
adminapi.SetAction((p, _) => AdminApiBench.RunAsync(p.GetValue(apiQubes), [.. p.GetValue(apiConcurrency)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)],
    p.GetValue(apiReads), p.GetValue(apiLists), p.GetValue(apiCycles), commandLine, p.GetValue(apiEnv) ?? []));

// policy
var polRules = new Option<int>("--rules") { DefaultValueFactory = _ => 10000 };
var polQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 200 };
var polDecisions = new Option<int>("--decisions") { DefaultValueFactory = _ => 1_000_000 };
var polSeed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
var policy = new Command("policy", "the compiled qrexec policy in process: a generated N-rule policy, p50/p99 and decisions/s on one thread") { polRules, polQubes, polDecisions, polSeed };
policy.SetAction(p => PolicyBench.Run(p.GetValue(polRules), p.GetValue(polQubes), p.GetValue(polDecisions), p.GetValue(polSeed), commandLine));

// audit
var auDir = new Option<string>("--state-dir") { Description = "Where the generated journal is kept (generated when missing, reused after)", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "qubes-audit-bench") };
var auQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 1000 };
var auEvents = new Option<long>("--events") { DefaultValueFactory = _ => 1_000_000 };
var auRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
var audit = new Command("audit", "qubes-audit log/show/verify/stats/report on a generated journal (1,000,000 events over 1,000 qubes), and --follow latency") { auDir, auQubes, auEvents, auRuns };
audit.SetAction((p, _) => AuditBench.RunAsync(p.GetValue(auDir)!, p.GetValue(auQubes), p.GetValue(auEvents), p.GetValue(auRuns), commandLine));

// sandbox
var sbRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 20 };
var sandbox = new Command("sandbox", "the sandbox layer as root: start until ready, shutdown, freeze, thaw of AppVM and DispVM sandboxes (busybox template, no network)") { sbRuns };
sandbox.SetAction((p, _) => OperatingSystem.IsLinux() ? SandboxBench.RunAsync(p.GetValue(sbRuns), commandLine) : Task.FromResult(2));

// sandbox-net
var snRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 20 };
var snClients = new Option<int>("--clients") { Description = "qubes linked to sys-firewall for the firewall-change figure (0 = skip)", DefaultValueFactory = _ => 1000 };
var snIdle = new Option<int>("--idle") { Description = "idle sandboxes for the memory figure (0 = skip)", DefaultValueFactory = _ => 200 };
var snOnly = new Option<string>("--only") { Description = "comma-separated parts to run: phases, start, dispvm, firewall, idle (default all)", DefaultValueFactory = _ => "phases,start,dispvm,firewall,idle" };
var snNftProcess = new Option<bool>("--nft-process") { Description = "nftables changes through the nft program instead of libnftables (phases and firewall; qubesd's start is not affected)" };
var snTemplate = new Option<string>("--template") { Description = "template source of qubesd's qubes for start and dispvm: busybox, or debootstrap (the default template; built first, 1-2 min)", DefaultValueFactory = _ => "busybox" };
snTemplate.AcceptOnlyFromAmong("busybox", "debootstrap");
var sandboxNet = new Command("sandbox-net", "as root: admin.vm.Start of a networked AppVM through qubesd on the sandbox backend, a firewall change with 1,000 qubes' rules loaded, memory of 200 idle sandboxes") { snRuns, snClients, snIdle, snOnly, snNftProcess, snTemplate };
sandboxNet.SetAction((p, _) => OperatingSystem.IsLinux()
    ? SandboxNetBench.RunAsync(p.GetValue(snRuns), p.GetValue(snClients), p.GetValue(snIdle), SandboxNetBench.ParseParts(p.GetValue(snOnly)!), p.GetValue(snNftProcess), commandLine, p.GetValue(snTemplate)!)
    : Task.FromResult(2));

// all
var all = new Command("all", "lifecycle, recovery, memory, adminapi and audit with their defaults (SQLite)");
all.SetAction(async (_, _) =>
{
    var exit = 0;
    exit |= await LifecycleBench.RunAsync(1000, 64, "sqlite", null, commandLine + "  [lifecycle --qubes 1000 --concurrency 64 --provider sqlite]");
    exit |= await RecoveryBench.RunAsync([100, 1000, 10000], 50, "sqlite", null, 3, 128, commandLine + "  [recovery --qubes 100,1000,10000 --events 50 --provider sqlite --runs 3]");
    exit |= await MemoryBench.RunAsync(1000, 50, "sqlite", null, commandLine + "  [memory --qubes 1000]");
    exit |= await AdminApiBench.RunAsync(1000, [1, 16], 20000, 1000, 500, commandLine + "  [adminapi --qubes 1000 --concurrency 1,16]");
    exit |= await AuditBench.RunAsync(Path.Combine(Path.GetTempPath(), "qubes-audit-bench"), 1000, 1_000_000, 3, commandLine + "  [audit --qubes 1000 --events 1000000 --runs 3]");
    return exit;
});

// hidden: the measured child processes
var stateDir = new Option<string>("--state-dir") { Required = true };
var childProvider = Provider();
var childConnection = ConnectionString();
var childQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 0 };
var idle = new Option<bool>("--idle-memory");
var recoverOnce = new Command("recover-once") { Hidden = true };
foreach (var o in new Option[] { stateDir, childProvider, childConnection, childQubes, idle })
    recoverOnce.Options.Add(o);
recoverOnce.SetAction((p, _) => Child.RecoverOnceAsync(new BenchStore(CheckProvider(p.GetValue(childProvider)!), p.GetValue(stateDir)!, p.GetValue(childConnection)),
    p.GetValue(childQubes), p.GetValue(idle)));
var loadOnce = new Command("load-once") { Hidden = true };
foreach (var o in new Option[] { stateDir, childProvider, childConnection })
    loadOnce.Options.Add(o);
loadOnce.SetAction(p => Child.LoadOnce(new BenchStore(CheckProvider(p.GetValue(childProvider)!), p.GetValue(stateDir)!, p.GetValue(childConnection))));

var profileLoad = new Command("profile-load") { Hidden = true };
foreach (var o in new Option[] { stateDir, childProvider, childConnection })
    profileLoad.Options.Add(o);
profileLoad.SetAction(p => Profile.Load(new BenchStore(CheckProvider(p.GetValue(childProvider)!), p.GetValue(stateDir)!, p.GetValue(childConnection))));

var genQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 1000 };
var genEvents = new Option<int>("--events") { DefaultValueFactory = _ => 50 };
var generate = new Command("generate", "Write a journal of N qubes x ~50 events into --state-dir (kept; for profiling)") { Hidden = true };
foreach (var o in new Option[] { stateDir, childProvider, childConnection, genQubes, genEvents })
    generate.Options.Add(o);
generate.SetAction(async (p, _) =>
{
    var store = new BenchStore(CheckProvider(p.GetValue(childProvider)!), p.GetValue(stateDir)!, p.GetValue(childConnection));
    var (elapsed, rows) = await JournalGenerator.GenerateAsync(store, p.GetValue(genQubes), p.GetValue(genEvents), 128);
    Console.WriteLine($"{rows} rows in {elapsed.TotalSeconds:0.0} s into {store.StateDir}");
    return 0;
});

var driveSocket = new Option<string>("--socket") { Required = true };
var driveCall = new Option<string>("--call") { Description = "an Admin API method, or create | cycle (over bq00000..)", DefaultValueFactory = _ => "admin.vm.List" };
var driveDest = new Option<string>("--dest") { DefaultValueFactory = _ => "dom0" };
var driveCount = new Option<int>("--count") { DefaultValueFactory = _ => 1000 };
var driveConcurrency = new Option<int>("--concurrency") { DefaultValueFactory = _ => 1 };
var drive = new Command("drive", "Calls against a running qubesd (for profiling it)") { Hidden = true };
foreach (var o in new Option[] { driveSocket, driveCall, driveDest, driveCount, driveConcurrency })
    drive.Options.Add(o);
drive.SetAction((p, _) => AdminApiDrive.RunAsync(p.GetValue(driveSocket)!, p.GetValue(driveCall)!, p.GetValue(driveDest)!, p.GetValue(driveCount), p.GetValue(driveConcurrency)));

var plQubes = new Option<int>("--qubes") { DefaultValueFactory = _ => 1000 };
var plIterations = new Option<int>("--iterations") { DefaultValueFactory = _ => 2000 };
var profileList = new Command("profile-list", "The admin.vm.List answer built in-process: today's handler vs suggested variants") { Hidden = true };
profileList.Options.Add(plQubes);
profileList.Options.Add(plIterations);
profileList.SetAction((p, _) => ListProfile.RunAsync(p.GetValue(plQubes), p.GetValue(plIterations)));

var root = new RootCommand("QubesActors benchmarks: the real qubesd host on the zero-latency simulated backend") { lifecycle, recovery, memory, adminapi, policy, audit, sandbox, sandboxNet, all, recoverOnce, loadOnce, profileLoad, generate, drive, profileList };
return await root.Parse(args).InvokeAsync();
