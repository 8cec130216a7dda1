using System.Diagnostics;
using System.Globalization;
using System.Net;
using QubesActors.AdminApi.Client;
using QubesActors.Core.Firewall;
using QubesActors.Core.Model;
using QubesActors.Sandbox;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Network;
using QubesActors.Sandbox.Storage;

namespace QubesActors.Bench;

/// <summary>
/// The issue 6 figures of the sandbox backend, as root: <c>admin.vm.Start</c> of a networked AppVM until Running
/// through a real qubesd on the sandbox backend; one qube's firewall change with 1,000 linked qubes' rules loaded in
/// sys-firewall; the resident memory each idle sandbox adds.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class SandboxNetBench
{
    /// <summary>The parts <c>--only</c> selects, in the order they run.</summary>
    public static readonly IReadOnlyList<string> Parts = ["phases", "start", "dispvm", "firewall", "idle"];

    public static IReadOnlySet<string> ParseParts(string only)
    {
        var parts = only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        var unknown = parts.Except(Parts).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"--only: unknown part(s) {string.Join(", ", unknown)}; the parts are {string.Join(", ", Parts)}");
        return parts;
    }

    /// <param name="nftProcess">nftables changes through the nft program, not libnftables: the figures before it.</param>
    /// <param name="template">Template source of qubesd's qubes (start and dispvm parts): busybox, or debootstrap (the default template).</param>
    public static async Task<int> RunAsync(int runs, int clients, int idle, IReadOnlySet<string> parts, bool nftProcess, string commandLine, string template = "busybox")
    {
        if (!SandboxManager.IsRoot)
        {
            Console.Error.WriteLine("sandbox-net bench: needs root (mounts, cgroups, namespaces)");
            return 2;
        }
        Console.WriteLine($"# command: {commandLine}");
        Console.WriteLine($"# nftables through {(nftProcess || !NftLibrary.Available ? "the nft program" : NftLibrary.Name)}; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        if (parts.Contains("phases"))
            await BackendPhasesAsync(runs, nftProcess);
        if (parts.Contains("start") || parts.Contains("dispvm"))
            await AdminApiStartAsync(runs, parts.Contains("start"), parts.Contains("dispvm"), template);
        if (clients > 0 && parts.Contains("firewall"))
            await FirewallChangeAsync(clients, runs, nftProcess);
        if (idle > 0 && parts.Contains("idle"))
            await IdleMemoryAsync(idle);
        Console.WriteLine($"# load average at the end {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    /// <summary>qubesd with the default layout on the sandbox backend (busybox template); work started and killed <paramref name="runs"/> times.</summary>
    private static async Task AdminApiStartAsync(int runs, bool starts, bool dispVms, string template)
    {
        var stateDir = Path.Combine(Path.GetTempPath(), $"qubes-bench-sbapi-{Environment.ProcessId}");
        Directory.CreateDirectory(stateDir);
        var start = new List<double>();
        var startIdle = new List<double>();
        try
        {
            await using var daemon = await DaemonProcess.StartAsync(stateDir, [],
            [
                "--backend", "sandbox", "--set", $"qubesd.sandbox.template-source={template}",
                "--set", "qubesd.sandbox.cgroup-parent=qubes-actors-bench", "--set", "qubesd.sandbox.network-prefix=qb-",
            ]);
            var client = new AdminClient(Path.Combine(stateDir, "qubesd.sock"));
            // The debootstrap template is built at the first start (1-2 min here).
            await daemon.WaitForRunningAsync(client, "sys-firewall", TimeSpan.FromMinutes(10));
            // Warm-up: JIT on both sides, the template's pages in the cache.
            for (var i = 0; i < 3; i++)
                await CycleAsync(client, null);
            for (var i = 0; i < runs && starts; i++)
                await CycleAsync(client, start);
            for (var i = 0; i < runs && starts; i++)
            {
                await Task.Delay(500);
                await CycleAsync(client, startIdle);
            }
            try
            {
                if (dispVms)
                    await DispVmAsync(client, Path.Combine(stateDir, "qrexec.sock"), runs);
            }
            finally
            {
                // Everything down before the daemon and its directory go (sandboxes outlive qubesd).
                await client.CallAsync("admin.vm.feature.Remove", "default-dvm", "preload-dispvm-max");
                foreach (var line in (await client.CallAsync("admin.vm.List", "dom0")).OkText.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    if (!line.StartsWith("dom0 ", StringComparison.Ordinal) && !line.Contains("state=Halted", StringComparison.Ordinal))
                        await client.CallAsync("admin.vm.Kill", line[..line.IndexOf(' ')]);
                foreach (var qube in new[] { "sys-usb", "sys-firewall", "sys-net" })
                    await client.CallAsync("admin.vm.Kill", qube);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(stateDir, recursive: true);
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"  left {stateDir}: {e.Message}");
            }
        }
        if (starts)
            Report.Table($"admin.vm.Start of a networked AppVM (work, netvm sys-firewall) until Running, qubesd on the sandbox backend, {template} template, ms, {runs} runs",
            ["when", "p50", "p90", "max"],
            [["back-to-back", P(start, 50), P(start, 90), P(start, 100)], ["after 500 ms idle", P(startIdle, 50), P(startIdle, 90), P(startIdle, 100)]]);
    }

    /// <summary>
    /// Where a networked start's time goes, without the actors: the namespace, the wiring (link + chain), the sandbox
    /// until ready, each alone, then <see cref="SandboxBackend.StartAsync"/> as the actors call it.
    /// </summary>
    private static async Task BackendPhasesAsync(int runs, bool nftProcess)
    {
        var storage = Path.Combine(Path.GetTempPath(), "qubes-bench-phases-" + Environment.ProcessId);
        BusyboxTemplate.Build(SandboxVolumes.TemplateRoot(storage, "tpl"));
        var naming = new NetworkNaming("qp-");
        var shell = new LinuxNetwork { ForceNftProcess = nftProcess };
        var network = new SandboxNetwork(shell, naming, storage);
        var manager = new SandboxManager(storage, CgroupLayout.Detect(parent: "qubes-actors-bench"));
        using var backend = new SandboxBackend(manager, network);
        var phases = new Dictionary<string, List<double>> { ["namespace"] = [], ["wire (link + chain)"] = [], ["sandbox until ready"] = [], ["backend start (all)"] = [], ["backend kill"] = [] };
        try
        {
            await network.PrepareAsync(new SandboxNetworkSpec("sys-net", 2, null, null, true), CancellationToken.None);
            await network.PrepareAsync(new SandboxNetworkSpec("sys-firewall", 3, null, "sys-net", true), CancellationToken.None);
            var work = new SandboxNetworkSpec("work", 7, null, "sys-firewall", false);
            await network.ApplyFirewallAsync("sys-firewall", "work", "10.137.0.7", FirewallRules.Default, CancellationToken.None);
            for (var i = 0; i < runs + 2; i++)
            {
                var clock = Stopwatch.StartNew();
                var ns = await network.CreateAsync(work, CancellationToken.None);
                var created = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                await network.WireAsync(work, CancellationToken.None);
                var wired = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                await manager.StartAsync(new SandboxSpec("work", QubeClass.AppVM, "tpl", 128, NetNamespace: ns), CancellationToken.None);
                var booted = clock.Elapsed.TotalMilliseconds;
                await manager.KillAsync("work", CancellationToken.None);
                await network.ReleaseAsync("work", CancellationToken.None);
                clock.Restart();
                await backend.StartAsync(new Runtime.Backend.DomainSpec(Guid.NewGuid(), "work", QubeClass.AppVM, 7, "tpl", "sys-firewall", "10.137.0.7", 128, 128, 1, false),
                    CancellationToken.None);
                var all = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                await backend.KillAsync("work", CancellationToken.None);
                var killed = clock.Elapsed.TotalMilliseconds;
                if (i < 2)
                    continue; // warm-up
                phases["namespace"].Add(created);
                phases["wire (link + chain)"].Add(wired);
                phases["sandbox until ready"].Add(booted);
                phases["backend start (all)"].Add(all);
                phases["backend kill"].Add(killed);
            }
        }
        finally
        {
            foreach (var name in manager.RunningNames)
                await manager.KillAsync(name, CancellationToken.None);
            await shell.CleanUpStaleAsync(naming, new HashSet<string>());
            Directory.Delete(storage, recursive: true);
        }
        Report.Table($"a networked AppVM's start in the sandbox backend, phase by phase (no actors, netvms as bare namespaces), ms, {runs} runs",
            ["phase", "p50", "p90"], phases.Select(p => new[] { p.Key, P(p.Value, 50), P(p.Value, 90) }));
    }

    /// <summary>
    /// <c>qvm run --dispvm true</c> as dom0 makes it: a qubes.VMShell call to <c>@dispvm</c> through dom0's qrexec
    /// socket (create, start, run, destroy: the call returns after the disposable is killed); the time until the
    /// service process started (its exec completed, seen through the kernel's proc connector) and until its first
    /// output; then the same from a pool of one preloaded disposable (preload-dispvm-max=1), each run after the
    /// replacement is preloaded.
    /// </summary>
    private static async Task DispVmAsync(AdminClient client, string qrexecSocket, int runs)
    {
        using var execs = new ProcExecEvents();
        var fresh = new DispVmSamples();
        var preloaded = new DispVmSamples();
        for (var i = 0; i < runs + 2; i++)
        {
            var call = await DispVmCallAsync(qrexecSocket, execs);
            if (i >= 2)
                fresh.Add(call);
        }
        _ = (await client.CallAsync("admin.vm.feature.Set", "default-dvm", "preload-dispvm-max", "1")).OkText;
        for (var i = 0; i < runs + 2; i++)
        {
            await WaitPreloadedAsync(client);
            var call = await DispVmCallAsync(qrexecSocket, execs);
            if (i >= 2)
                preloaded.Add(call);
        }
        await client.CallAsync("admin.vm.feature.Remove", "default-dvm", "preload-dispvm-max");
        Report.Table($"qvm run --dispvm true: a qubes.VMShell call to @dispvm from dom0 (qrexec socket), ms, {runs} runs",
            ["disposable", "service started p50", "p90", "first output p50", "p90", "whole call (incl. destroy) p50", "p90"],
            [fresh.Row("created for the call"), preloaded.Row("preloaded (pool of 1)")]);
    }

    private sealed record DispVmCall(double Started, double FirstOutput, double Total);

    private sealed class DispVmSamples
    {
        private readonly List<double> _started = [], _first = [], _total = [];

        public void Add(DispVmCall call)
        {
            _started.Add(call.Started);
            _first.Add(call.FirstOutput);
            _total.Add(call.Total);
        }

        public string[] Row(string name)
        {
            var seen = _started.Where(double.IsFinite).ToList();
            var note = seen.Count < _started.Count ? $" ({seen.Count} of {_started.Count} seen)" : "";
            return [name, seen.Count == 0 ? "-" : P(seen, 50) + note, seen.Count == 0 ? "-" : P(seen, 90), P(_first, 50), P(_first, 90), P(_total, 50), P(_total, 90)];
        }
    }

    private static async Task<DispVmCall> DispVmCallAsync(string socket, ProcExecEvents execs)
    {
        using var stdin = new MemoryStream("echo started; true\n"u8.ToArray());
        var stdout = new FirstWriteStream();
        using var stderr = new MemoryStream();
        var clock = Stopwatch.StartNew();
        var since = Stopwatch.GetTimestamp();
        stdout.Clock = clock;
        var exit = await QubesActors.Sandbox.Qrexec.QrexecClient.CallAsync(socket, "@dispvm", "qubes.VMShell", stdin, stdout, stderr, CancellationToken.None);
        var total = clock.Elapsed.TotalMilliseconds;
        if (exit != 0)
            throw new InvalidOperationException($"@dispvm call exited {exit}: {System.Text.Encoding.UTF8.GetString(stderr.ToArray())}");
        // The service's exec is named after its file (comm "qubes.VMShell"); the event may trail the call's end a little.
        long? started = null;
        for (var i = 0; i < 100 && (started = execs.FirstExecAfter("qubes.VMShell", since)) is null; i++)
            await Task.Delay(10);
        // Not seen when the service was gone before its name could be read (/proc/PID/comm): counted, not guessed.
        return new DispVmCall(started is { } at ? Stopwatch.GetElapsedTime(since, at).TotalMilliseconds : double.NaN, stdout.FirstWriteMs, total);
    }

    private static async Task WaitPreloadedAsync(AdminClient client)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var listed = await client.CallAsync("admin.vm.feature.Get", "default-dvm", "preload-dispvm");
            if (listed.IsOk && listed.OkText.Trim().Length > 0)
            {
                var name = listed.OkText.Trim().Split(' ')[0];
                // The list lags a hand-out by a second: a name there may be gone already.
                var list = await client.CallAsync("admin.vm.List", name);
                if (list.IsOk && list.OkText.Contains("state=Paused", StringComparison.Ordinal))
                    return;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("no disposable was preloaded within 60 s");
    }

    /// <summary>Remembers when the first byte arrived.</summary>
    private sealed class FirstWriteStream : MemoryStream
    {
        public Stopwatch? Clock { get; set; }
        public double FirstWriteMs { get; private set; } = double.NaN;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (double.IsNaN(FirstWriteMs) && buffer.Length > 0)
                FirstWriteMs = Clock!.Elapsed.TotalMilliseconds;
            return base.WriteAsync(buffer, cancellationToken);
        }
    }

    private static async Task CycleAsync(AdminClient client, List<double>? samples)
    {
        var clock = Stopwatch.StartNew();
        var started = await client.CallAsync("admin.vm.Start", "work");
        var elapsed = clock.Elapsed.TotalMilliseconds;
        if (!started.IsOk)
            throw new InvalidOperationException($"admin.vm.Start work: {started}");
        samples?.Add(elapsed);
        var killed = await client.CallAsync("admin.vm.Kill", "work");
        if (!killed.IsOk)
            throw new InvalidOperationException($"admin.vm.Kill work: {killed}");
    }

    /// <summary>
    /// sys-net and sys-firewall namespaces, <paramref name="clients"/> qubes linked to sys-firewall each with 5 rules
    /// (what the network layer does for a running qube, without its sandbox), then one qube's rules changed.
    /// </summary>
    private static async Task FirewallChangeAsync(int clients, int runs, bool nftProcess)
    {
        var naming = new NetworkNaming("qf-");
        var shell = new LinuxNetwork { ForceNftProcess = nftProcess };
        var state = Path.Combine(Path.GetTempPath(), $"qubes-bench-fw-{Environment.ProcessId}");
        var network = new SandboxNetwork(shell, naming, state);
        var load = Stopwatch.StartNew();
        var changes = new List<double>();
        try
        {
            await network.PrepareAsync(new SandboxNetworkSpec("sys-net", 2, null, null, true), CancellationToken.None);
            await network.PrepareAsync(new SandboxNetworkSpec("sys-firewall", 3, null, "sys-net", true), CancellationToken.None);
            for (var i = 0; i < clients; i++)
            {
                var qid = 10 + i;
                var name = $"app-{i:0000}";
                await network.PrepareAsync(new SandboxNetworkSpec(name, qid, null, "sys-firewall", false), CancellationToken.None);
                await network.ApplyFirewallAsync("sys-firewall", name, Addressing.VmIdToIpv4("10.137", qid), RulesFor(i), CancellationToken.None);
            }
            Console.Error.WriteLine($"  {clients} qubes linked with their chains in {load.Elapsed.TotalSeconds:0.0} s");
            var target = $"app-{clients / 2:0000}";
            var ip = Addressing.VmIdToIpv4("10.137", 10 + clients / 2);
            for (var i = 0; i < runs + 3; i++)
            {
                var clock = Stopwatch.StartNew();
                await network.ApplyFirewallAsync("sys-firewall", target, ip, RulesFor(clients + i), CancellationToken.None);
                if (i >= 3)
                    changes.Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        finally
        {
            await shell.CleanUpStaleAsync(naming, new HashSet<string>());
            if (Directory.Exists(state))
                Directory.Delete(state, recursive: true);
        }
        Report.Table($"one qube's firewall change applied (rules compiled, one nft transaction in sys-firewall), {clients} qubes' chains loaded, ms, {runs} runs",
            ["p50", "p90", "max"], [[P(changes, 50), P(changes, 90), P(changes, 100)]]);
    }

    private static FirewallRules RulesFor(int i) => FirewallRuleSet.ParseRules(
        $"action=accept dst4=192.0.2.{i % 250 + 1} proto=tcp dstports=443\n" +
        $"action=accept dst4=198.51.100.0/24 proto=tcp dstports={1000 + i % 5000}-{1010 + i % 5000}\n" +
        "action=accept specialtarget=dns\n" +
        "action=accept proto=icmp icmptype=8\n" +
        "action=drop\n");

    /// <summary>
    /// <paramref name="count"/> idle AppVM sandboxes (busybox template, no netvm): memory the machine lost per sandbox
    /// (MemAvailable before and after), the resident set of each one's processes (Pss, shared pages counted once),
    /// and what its cgroup is charged.
    /// </summary>
    private static async Task IdleMemoryAsync(int count)
    {
        var storage = Path.Combine(Path.GetTempPath(), "qubes-bench-idle-" + Environment.ProcessId);
        BusyboxTemplate.Build(SandboxVolumes.TemplateRoot(storage, "tpl"));
        var cgroups = CgroupLayout.Detect(parent: "qubes-actors-bench");
        var manager = new SandboxManager(storage, cgroups);
        var clock = Stopwatch.StartNew();
        double availableBefore, availableAfter, pss = 0, charged = 0;
        try
        {
            // One warm-up sandbox so the template's pages are already cached before the "before" reading.
            await manager.StartAsync(new SandboxSpec("idle-warm", QubeClass.AppVM, "tpl", 64), CancellationToken.None);
            await manager.KillAsync("idle-warm", CancellationToken.None);
            await Task.Delay(1000);
            availableBefore = MemAvailableKiB();
            for (var i = 0; i < count; i++)
                await manager.StartAsync(new SandboxSpec($"idle-{i:000}", QubeClass.AppVM, "tpl", 64), CancellationToken.None);
            var started = clock.Elapsed.TotalSeconds;
            await Task.Delay(2000);
            availableAfter = MemAvailableKiB();
            foreach (var name in manager.RunningNames)
            {
                foreach (var pid in File.ReadAllLines(cgroups.PidsFile(name)).Select(int.Parse))
                    pss += PssKiB(pid);
                charged += cgroups.Version == CgroupVersion.V1
                    ? long.Parse(File.ReadAllText(Path.Combine(cgroups.Root, "memory", cgroups.Parent, name, "memory.usage_in_bytes")).Trim(), CultureInfo.InvariantCulture) / 1024.0
                    : long.Parse(File.ReadAllText(Path.Combine(cgroups.Root, cgroups.Parent, name, "memory.current")).Trim(), CultureInfo.InvariantCulture) / 1024.0;
            }
            Console.Error.WriteLine($"  {count} sandboxes started in {started:0.0} s");
        }
        finally
        {
            foreach (var name in manager.RunningNames)
                await manager.KillAsync(name, CancellationToken.None);
            Directory.Delete(storage, recursive: true);
        }
        Report.Table($"{count} idle sandboxes (AppVM, busybox template, no netvm): memory each adds, KiB",
            ["MemAvailable drop / sandbox", "Pss of its processes", "cgroup charge"],
            [[F((availableBefore - availableAfter) / count), F(pss / count), F(charged / count)]]);
    }

    private static double MemAvailableKiB() =>
        double.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private static double PssKiB(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/smaps_rollup").FirstOrDefault(l => l.StartsWith("Pss:", StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string F(double v) => v.ToString("0", CultureInfo.InvariantCulture);

    private static string P(List<double> values, int percentile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)].ToString("0.0", CultureInfo.InvariantCulture);
    }
}
