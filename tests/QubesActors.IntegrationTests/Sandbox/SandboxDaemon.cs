using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace QubesActors.IntegrationTests.Sandbox;

/// <summary>
/// A qubesd process on the sandbox backend (root; bubblewrap and busybox-static): the busybox template, a cgroup parent
/// and a namespace prefix of its own, so a test sees and cleans exactly what its daemon made.
/// </summary>
public sealed class SandboxDaemon : IAsyncDisposable
{
    private static readonly string[] Settled = ["Transient", "Halting", "Dying"];

    public string StateDir { get; } = Directory.CreateTempSubdirectory("qa-sbd-").FullName;
    public string Id { get; } = Guid.NewGuid().ToString("N")[..6];
    public string CgroupParent => $"qubes-actors-it-{Id}";
    public string NetworkPrefix => $"qi{Id}-";
    public QubesdProcess? Daemon { get; private set; }

    public IEnumerable<string> Arguments(IEnumerable<string>? extra = null) =>
    [
        "--backend", "sandbox",
        "--set", "qubesd.sandbox.template-source=busybox",
        "--set", $"qubesd.sandbox.cgroup-parent={CgroupParent}",
        "--set", $"qubesd.sandbox.network-prefix={NetworkPrefix}",
        .. extra ?? [],
    ];

    public async Task<QubesdProcess> StartAsync(IEnumerable<string>? extra = null)
    {
        if (Environment.UserName != "root" && !File.ReadAllText("/proc/self/status").Contains("Uid:\t0\t", StringComparison.Ordinal))
            throw new InvalidOperationException("the sandbox daemon tests need root; CI runs them as root");
        Daemon = await QubesdProcess.StartAsync(StateDir, extraArgs: Arguments(extra));
        await WaitSettledAsync();
        return Daemon;
    }

    /// <summary>Until nothing is mid-start or mid-shutdown (reconciliation and autostart done).</summary>
    public async Task WaitSettledAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var list = (await Daemon!.CallAsync("admin.vm.List", "dom0")).OkText;
            if (!Settled.Any(s => list.Contains($"state={s} ", StringComparison.Ordinal)) || DateTime.UtcNow > deadline)
                return;
            await Task.Delay(50);
        }
    }

    public async Task<Dictionary<string, string>> StatesAsync() =>
        (await Daemon!.CallAsync("admin.vm.List", "dom0")).OkText.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .ToDictionary(l => l[..l.IndexOf(' ')], l => l.Split(' ').Single(f => f.StartsWith("state=", StringComparison.Ordinal))["state=".Length..]);

    /// <summary>The processes of each sandbox, from its cgroup (v1 pids controller, or the v2 unified tree).</summary>
    public Dictionary<string, HashSet<int>> Processes()
    {
        var root = Directory.Exists($"/sys/fs/cgroup/pids/{CgroupParent}") ? $"/sys/fs/cgroup/pids/{CgroupParent}" : $"/sys/fs/cgroup/{CgroupParent}";
        if (!Directory.Exists(root))
            return [];
        return Directory.GetDirectories(root).ToDictionary(d => Path.GetFileName(d),
            d => File.ReadAllLines(Path.Combine(d, "cgroup.procs")).Select(int.Parse).ToHashSet());
    }

    public static async Task<string> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0 ? await stdout : throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {await stderr}");
    }

    public async Task<IReadOnlyList<string>> NamespacesAsync() =>
        [.. (await RunAsync("ip", "netns", "list")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')[0]).Where(n => n.StartsWith(NetworkPrefix, StringComparison.Ordinal))];

    public IReadOnlyList<string> Mounts() =>
        [.. File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(StateDir, StringComparison.Ordinal))];

    /// <summary>Every qube down through the Admin API (as a user would), then the daemon stopped.</summary>
    public async Task ShutdownAllAsync()
    {
        if (Daemon is null)
            return;
        foreach (var (name, state) in await StatesAsync())
            if (name != "dom0" && state != "Halted")
                await Daemon.CallAsync("admin.vm.Kill", name);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((await StatesAsync()).Any(s => s.Key != "dom0" && s.Value != "Halted") && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        await Daemon.TerminateAsync(TimeSpan.FromSeconds(20));
        Daemon.Dispose();
        Daemon = null;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ShutdownAllAsync();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or System.Net.Sockets.SocketException)
        {
        }
        // Whatever a failed test left: processes, cgroups, namespaces, mounts.
        foreach (var pids in Processes().Values)
            foreach (var pid in pids)
                _ = Process.Start("kill", ["-9", $"{pid}"])!;
        await Task.Delay(200);
        foreach (var controller in new[] { "freezer", "memory", "pids", "" })
        {
            var dir = Path.Combine("/sys/fs/cgroup", controller, CgroupParent);
            if (!Directory.Exists(dir))
                continue;
            foreach (var child in Directory.GetDirectories(dir))
                TryDelete(child);
            TryDelete(dir);
        }
        foreach (var ns in await NamespacesAsync())
            await RunAsync("ip", "netns", "del", ns);
        foreach (var mount in Mounts().OrderByDescending(m => m.Length))
            await RunAsync("umount", "-l", mount);
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir);
        }
        catch (IOException)
        {
        }
    }
}
