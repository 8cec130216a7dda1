using System.Diagnostics;
using QubesActors.Runtime.Actors;

namespace QubesActors.Bench;

/// <summary>create, start, pause, unpause, shutdown(wait) of N AppVMs through the real host and actors.</summary>
public static class LifecycleBench
{
    public static async Task<int> RunAsync(int qubes, int concurrency, string provider, string? connectionString, string commandLine)
    {
        Console.WriteLine($"# lifecycle: {qubes} AppVMs, concurrency {concurrency}, journal {provider}");
        Console.WriteLine($"# command: {commandLine}");
        var store = await BenchStore.CreateAsync(provider, connectionString, "lc");
        var phases = new (string Name, Func<int, QubesProtocol.IQubesCommand> Make)[]
        {
            ("create", Commands.Create),
            ("start", i => new QubesProtocol.StartQube(Commands.NameOf(i), Commands.Caller)),
            ("pause", i => new QubesProtocol.PauseQube(Commands.NameOf(i), Commands.Caller)),
            ("unpause", i => new QubesProtocol.UnpauseQube(Commands.NameOf(i), Commands.Caller)),
            ("shutdown", i => new QubesProtocol.ShutdownQube(Commands.NameOf(i), false, true, Commands.Caller)),
        };
        var rows = new List<(string Phase, int Ops, double Seconds, Samples Samples, double CpuMs, double Load)>();
        var errors = new List<string>();
        try
        {
            await using var host = await RunningHost.StartAsync(store);
            // Warm-up outside the timed phases: one qube through the whole cycle (JIT, journal connections).
            await WarmUpAsync(host);
            foreach (var (name, make) in phases)
            {
                var samples = new Samples(name);
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                await Parallel.RunAsync(qubes, concurrency, async i =>
                {
                    var op = Stopwatch.StartNew();
                    var result = await host.Ask(make(i));
                    samples.Add(op.Elapsed.TotalMilliseconds);
                    if (result is QubesProtocol.Refused r)
                    {
                        Interlocked.Increment(ref samples.Errors);
                        lock (errors)
                            if (errors.Count < 5)
                                errors.Add($"{name} {Commands.NameOf(i)}: {r.Error.Message}");
                    }
                });
                rows.Add((name, qubes, clock.Elapsed.TotalSeconds, samples, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds, Child.LoadAverage()));
            }
        }
        finally
        {
            await store.DropAsync();
        }
        var totalOps = rows.Sum(r => r.Ops);
        var totalSeconds = rows.Sum(r => r.Seconds);
        Report.Table($"lifecycle ({qubes} qubes, concurrency {concurrency}, {provider})",
            ["phase", "ops", "seconds", "ops/s", "p50 ms", "p99 ms", "max ms", "errors", "cpu ms/op", "loadavg"],
            rows.Select(r => new[]
            {
                r.Phase, r.Ops.ToString(), Stats.F(r.Seconds, 2), Stats.F(r.Ops / r.Seconds, 0), Stats.F(r.Samples.Percentile(50), 2),
                Stats.F(r.Samples.Percentile(99), 2), Stats.F(r.Samples.Percentile(100), 2), r.Samples.Errors.ToString(), Stats.F(r.CpuMs / r.Ops, 2), Stats.F(r.Load, 1),
            }).Append(["total", totalOps.ToString(), Stats.F(totalSeconds, 2), Stats.F(totalOps / totalSeconds, 0), "", "", "", rows.Sum(r => r.Samples.Errors).ToString(),
                Stats.F(rows.Sum(r => r.CpuMs) / totalOps, 2), ""]));
        Console.WriteLine($"(cpu ms/op = process CPU time (all threads, {Environment.ProcessorCount} CPUs) per operation; loadavg = 1-minute load average at the end of the phase: the machine is shared)");
        foreach (var e in errors)
            Console.WriteLine($"  refused: {e}");
        var overall = totalOps / totalSeconds;
        Console.WriteLine($"goal >= 2,000 ops/s overall: {(overall >= 2000 ? "MET" : "MISSED")} ({Stats.F(overall, 0)} ops/s)");
        foreach (var r in rows)
            Report.JsonLine(new
            {
                bench = "lifecycle", provider, qubes, concurrency, phase = r.Phase, ops = r.Ops, seconds = Math.Round(r.Seconds, 4),
                ops_per_s = Math.Round(r.Ops / r.Seconds, 1), p50_ms = Math.Round(r.Samples.Percentile(50), 3), p99_ms = Math.Round(r.Samples.Percentile(99), 3),
                errors = r.Samples.Errors, cpu_ms_per_op = Math.Round(r.CpuMs / r.Ops, 3), loadavg_1m = r.Load, command = commandLine,
            });
        Report.JsonLine(new
        {
            bench = "lifecycle", provider, qubes, concurrency, phase = "total", ops = totalOps, seconds = Math.Round(totalSeconds, 4),
            ops_per_s = Math.Round(overall, 1), errors = rows.Sum(r => r.Samples.Errors), goal_ops_per_s = 2000, goal_met = overall >= 2000, cpu_ms_per_op = Math.Round(rows.Sum(r => r.CpuMs) / totalOps, 3), command = commandLine,
        });
        return rows.Sum(r => r.Samples.Errors) == 0 ? 0 : 1;
    }

    private static async Task WarmUpAsync(RunningHost host)
    {
        const string name = "bqwarmup";
        var create = Commands.Create(0) with { Name = name };
        foreach (var command in new QubesProtocol.IQubesCommand[]
                 {
                     create, new QubesProtocol.StartQube(name, Commands.Caller), new QubesProtocol.PauseQube(name, Commands.Caller),
                     new QubesProtocol.UnpauseQube(name, Commands.Caller), new QubesProtocol.ShutdownQube(name, false, true, Commands.Caller),
                     new QubesProtocol.RemoveQube(name, Commands.Caller),
                 })
            if (await host.Ask(command) is QubesProtocol.Refused r)
                throw new InvalidOperationException($"warm-up {command.GetType().Name}: {r.Error.Message}");
    }
}
