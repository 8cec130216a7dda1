using System.Text.Json;

namespace QubesActors.Bench;

/// <summary>Recovery from a journal of N qubes x ~50 events, measured in a new process from exec to every qube answering.</summary>
public static class RecoveryBench
{
    /// <summary>qids are 1..9999 (docs/qubes-semantics.md §1.1); dom0 is 0 and the bench template takes one.</summary>
    public const int MaxQubes = 9998;

    public static async Task<int> RunAsync(int[] sizes, int events, string provider, string? connectionString, int runs, int concurrency, string commandLine)
    {
        Console.WriteLine($"# recovery: qubes {string.Join(',', sizes)}, ~{events} events each, journal {provider}, {runs} runs");
        Console.WriteLine($"# command: {commandLine}");
        var rows = new List<string[]>();
        var breakdown = new List<string[]>();
        var exit = 0;
        foreach (var requested in sizes)
        {
            var n = Math.Min(requested, MaxQubes);
            if (n != requested)
                Console.WriteLine($"  note: {requested} qubes cannot exist (qid space 1..9999, one taken by the template); measuring {n}");
            var store = await BenchStore.CreateAsync(provider, connectionString, $"rec{n}");
            try
            {
                Console.Error.WriteLine($"  generating {n} qubes x {events} events ({provider}) ...");
                var (elapsed, rowCount) = await JournalGenerator.GenerateAsync(store, n, events, concurrency);
                Console.Error.WriteLine($"  generated {rowCount} journal rows in {elapsed.TotalSeconds:0.0} s");
                var load = await Child.RunAsync("load-once", store);
                var children = new List<Child.ChildRun>();
                for (var r = 0; r < runs; r++)
                {
                    var run = await Child.RunAsync("recover-once", store, "--qubes", n.ToString());
                    children.Add(run);
                    Console.Error.WriteLine($"  run {r + 1}: {run.WallMs:0} ms  {run.Result.GetRawText()}");
                }
                var walls = children.Select(c => c.WallMs).ToList();
                double MedianMark(string mark) => Stats.Median(children.Select(c => c.Result.GetProperty("marks_ms").GetProperty(mark).GetDouble()).ToList());
                double MedianOf(string field) => Stats.Median(children.Select(c => c.Result.GetProperty(field).GetDouble()).ToList());
                var median = Stats.Median(walls);
                var goal = provider == "sqlite" && n == 1000 ? (median <= 1000 ? "MET" : "MISSED") : "";
                rows.Add([n.ToString(), rowCount.ToString(), Stats.F(elapsed.TotalSeconds, 1), Stats.F(median, 0), Stats.F(walls.Min(), 0), Stats.F(walls.Max(), 0), goal]);
                breakdown.Add([n.ToString(), Stats.F(MedianMark("main"), 0), Stats.F(MedianMark("host_built"), 0), Stats.F(MedianMark("host_started"), 0),
                    Stats.F(MedianMark("ready"), 0), Stats.F(MedianMark("all_pinged"), 0), Stats.F(MedianOf("supervisor_recovery_ms"), 0),
                    Stats.F(load.Result.GetProperty("cold_load_ms").GetDouble(), 0), Stats.F(MedianOf("warm_journal_load_ms"), 0), Stats.F(MedianOf("warm_collection_recover_ms"), 0),
                    Stats.F(MedianOf("cpu_ms_until_pinged"), 0), Stats.F(MedianOf("loadavg_1m"), 1)]);
                if (children.Any(c => c.Result.GetProperty("refused").GetInt32() > 0))
                    exit = 1;
                Report.JsonLine(new
                {
                    bench = "recovery", provider, qubes = n, requested_qubes = requested, events_per_qube = events, journal_rows = rowCount,
                    generate_s = Math.Round(elapsed.TotalSeconds, 2), runs, median_ms = Math.Round(median, 1),
                    p50_ms = Math.Round(Stats.Percentile(walls, 50), 1), p99_ms = Math.Round(Stats.Percentile(walls, 99), 1),
                    min_ms = Math.Round(walls.Min(), 1), max_ms = Math.Round(walls.Max(), 1), runs_ms = walls.Select(w => Math.Round(w, 1)).ToArray(),
                    breakdown_median_ms = new
                    {
                        main = MedianMark("main"), host_built = MedianMark("host_built"), host_started = MedianMark("host_started"),
                        ready = MedianMark("ready"), all_pinged = MedianMark("all_pinged"), supervisor_recovery = MedianOf("supervisor_recovery_ms"),
                    },
                    cpu_ms_until_pinged_median = MedianOf("cpu_ms_until_pinged"), loadavg_1m = MedianOf("loadavg_1m"),
                    load_only_child = JsonSerializer.Deserialize<JsonElement>(load.Result.GetRawText()),
                    goal = goal.Length > 0 ? "<= 1000 ms for 1000 qubes on sqlite" : null, goal_met = goal.Length > 0 ? goal == "MET" : (bool?)null,
                    command = commandLine,
                });
            }
            finally
            {
                await store.DropAsync();
            }
        }
        Report.Table($"recovery ({provider}, ~{events} events per qube; wall = Process.Start of a new process until every qube actor answered PingQube; {runs} runs)",
            ["qubes", "journal rows", "generate s", "median ms", "min ms", "max ms", "goal"], rows);
        Report.Table("breakdown (child, medians, ms since process exec): main = Main entered; built = QubesHost.Build; started = host.StartAsync returned; ready = supervisor Ready; pinged = all PingQube answered; sup = supervisor's own recovery time (bulk load + CollectionRecovery + spawn); load-only = JournalLoader.Load cold in a fresh process; warm = the same, again in the recovered process",
            ["qubes", "main", "built", "started", "ready", "pinged", "sup", "load-only cold", "load warm", "recover warm", "cpu ms", "loadavg"], breakdown);
        return exit;
    }
}

public static class MemoryBench
{
    public static async Task<int> RunAsync(int qubes, int events, string provider, string? connectionString, string commandLine)
    {
        Console.WriteLine($"# memory: idle daemon holding {qubes} qubes (~{events} events each), journal {provider}");
        Console.WriteLine($"# command: {commandLine}");
        var n = Math.Min(qubes, RecoveryBench.MaxQubes);
        var store = await BenchStore.CreateAsync(provider, connectionString, $"mem{n}");
        try
        {
            Console.Error.WriteLine($"  generating {n} qubes x {events} events ({provider}) ...");
            var (elapsed, rows) = await JournalGenerator.GenerateAsync(store, n, events, 128);
            Console.Error.WriteLine($"  generated {rows} journal rows in {elapsed.TotalSeconds:0.0} s");
            var run = await Child.RunAsync("recover-once", store, "--qubes", n.ToString(), "--idle-memory");
            var r = run.Result;
            var rssMb = r.GetProperty("vmrss_kb").GetInt64() / 1024.0;
            var hwmMb = r.GetProperty("vmhwm_kb").GetInt64() / 1024.0;
            var heapMb = r.GetProperty("managed_heap_bytes").GetInt64() / 1048576.0;
            Report.Table($"memory (idle qubesd in a child process, {n} qubes, {provider}; after forced GC and 2 s idle)",
                ["qubes", "VmRSS MB", "VmHWM MB", "managed heap MB", "threads", "goal < 250 MB"],
                [[n.ToString(), Stats.F(rssMb), Stats.F(hwmMb), Stats.F(heapMb), r.GetProperty("threads").GetInt32().ToString(), rssMb < 250 ? "MET" : "MISSED"]]);
            Report.JsonLine(new
            {
                bench = "memory", provider, qubes = n, events_per_qube = events, vmrss_mb = Math.Round(rssMb, 1), vmhwm_mb = Math.Round(hwmMb, 1),
                managed_heap_mb = Math.Round(heapMb, 1), threads = r.GetProperty("threads").GetInt32(), goal_mb = 250, goal_met = rssMb < 250, command = commandLine,
            });
            return r.GetProperty("refused").GetInt32() == 0 ? 0 : 1;
        }
        finally
        {
            await store.DropAsync();
        }
    }
}
