using System.Diagnostics;
using System.Globalization;
using QubesActors.Core.Model;
using QubesActors.Sandbox;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Storage;

namespace QubesActors.Bench;

/// <summary>
/// The sandbox layer alone (no actors, no network yet): start until the sandbox's init reported ready, graceful
/// shutdown until torn down, freeze and thaw; AppVM (overlay on disk) and DispVM (tmpfs), on the busybox template,
/// as root. Back-to-back runs and runs after 500 ms idle (this vCPU pays 3-5x on the first fork/exec after idle,
/// ../shared/docs/isolation-backends.md).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class SandboxBench
{
    public static async Task<int> RunAsync(int runs, string commandLine)
    {
        if (!SandboxManager.IsRoot)
        {
            Console.Error.WriteLine("sandbox bench: needs root (mounts, cgroups, namespaces)");
            return 2;
        }
        var storage = Path.Combine(Path.GetTempPath(), "qubes-sandbox-bench-" + Environment.ProcessId);
        BusyboxTemplate.Build(SandboxVolumes.TemplateRoot(storage, "tpl"));
        var manager = new SandboxManager(storage, CgroupLayout.Detect(parent: "qubes-actors-bench"));
        var rows = new List<string[]>();
        try
        {
            foreach (var (klass, label) in new[] { (QubeClass.AppVM, "AppVM"), (QubeClass.DispVM, "DispVM") })
                foreach (var idle in new[] { TimeSpan.Zero, TimeSpan.FromMilliseconds(500) })
                {
                    var start = new List<double>();
                    var stop = new List<double>();
                    var freeze = new List<double>();
                    var thaw = new List<double>();
                    for (var i = 0; i < runs; i++)
                    {
                        var name = $"bench-{label.ToLowerInvariant()}-{i}";
                        if (idle > TimeSpan.Zero)
                            await Task.Delay(idle);
                        var clock = Stopwatch.StartNew();
                        await manager.StartAsync(new SandboxSpec(name, klass, "tpl", 128), CancellationToken.None);
                        start.Add(clock.Elapsed.TotalMilliseconds);
                        clock.Restart();
                        manager.Pause(name);
                        freeze.Add(clock.Elapsed.TotalMilliseconds);
                        clock.Restart();
                        manager.Unpause(name);
                        thaw.Add(clock.Elapsed.TotalMilliseconds);
                        clock.Restart();
                        await manager.ShutdownAsync(name, TimeSpan.FromSeconds(10), CancellationToken.None);
                        stop.Add(clock.Elapsed.TotalMilliseconds);
                    }
                    rows.Add([label, idle == TimeSpan.Zero ? "back-to-back" : "after 500 ms idle", P(start, 50), P(start, 90), P(stop, 50), P(freeze, 50), P(thaw, 50)]);
                }
        }
        finally
        {
            foreach (var name in manager.RunningNames)
                await manager.KillAsync(name, CancellationToken.None);
            Directory.Delete(storage, recursive: true);
        }
        Report.Table($"sandbox start until ready / shutdown / freeze / thaw, ms, {runs} runs each, busybox template, no network  [{commandLine}]",
            ["kind", "runs", "start p50", "start p90", "stop p50", "freeze p50", "thaw p50"], rows);
        return 0;
    }

    private static string P(List<double> values, int percentile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1)].ToString("0.0", CultureInfo.InvariantCulture);
    }
}
