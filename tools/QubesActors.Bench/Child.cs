using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using QubesActors.Daemon;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Bench;

/// <summary>The measured side: a fresh process that recovers the daemon and answers.</summary>
public static class Child
{
    public const string ResultPrefix = "RESULT ";
    public const string PingedLine = "PINGED";

    /// <summary>The 1-minute load average: the machine is shared, so every figure carries it.</summary>
    public static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Milliseconds since this process was exec'd (kernel start time, 10 ms resolution).</summary>
    private static double SinceProcessStart() => (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;

    /// <summary>
    /// recover-once: build and start the real host on the journal, ping every qube (each qube actor answers itself),
    /// print a RESULT line with the breakdown. With <paramref name="idleMemory"/>: then force a GC, idle 2 s, report VmRSS.
    /// </summary>
    public static async Task<int> RecoverOnceAsync(BenchStore store, int qubes, bool idleMemory)
    {
        var marks = new Dictionary<string, double> { ["main"] = SinceProcessStart() };
        var clock = Stopwatch.StartNew();
        var offset = marks["main"];
        double Mark() => offset + clock.Elapsed.TotalMilliseconds;

        var settings = store.Settings();
        marks["settings"] = Mark();
        using var host = RunningHost.Build(settings);
        marks["host_built"] = Mark();
        await host.StartAsync();
        marks["host_started"] = Mark();
        var qubesRef = await host.Services.GetRequiredService<ActorRegistry>().GetAsync<QubesKey>();
        marks["registry"] = Mark();
        // Pings sent now wait in the supervisor's stash until recovery is done.
        var timeout = TimeSpan.FromMinutes(5);
        var readyTask = qubesRef.Ask<QubesProtocol.Ready>(new QubesProtocol.WaitUntilReady(), timeout)
            .ContinueWith(t => { marks["ready"] = Mark(); return t.Result; }, TaskScheduler.Default);
        var pings = new Task<QubesProtocol.CommandResult>[qubes];
        for (var i = 0; i < qubes; i++)
            pings[i] = qubesRef.Ask<QubesProtocol.CommandResult>(new QubesProtocol.PingQube(Commands.NameOf(i), Commands.Caller), timeout);
        var results = await Task.WhenAll(pings);
        marks["all_pinged"] = Mark();
        // The parent stops its clock at this line; the breakdown below is not part of the measurement.
        Console.Out.WriteLine(PingedLine);
        Console.Out.Flush();
        var cpuAtPinged = Process.GetCurrentProcess().TotalProcessorTime;
        var ready = await readyTask;
        var refused = results.OfType<QubesProtocol.Refused>().ToList();

        var result = new Dictionary<string, object?>
        {
            ["qubes_pinged"] = results.Length - refused.Count,
            ["refused"] = refused.Count,
            ["first_refusal"] = refused.FirstOrDefault()?.Error.Message,
            ["recovered_qubes"] = ready.Qubes,
            ["quarantined"] = ready.Quarantined,
            ["supervisor_recovery_ms"] = Math.Round(ready.RecoveryTime.TotalMilliseconds, 1),
            ["cpu_ms_until_pinged"] = Math.Round(cpuAtPinged.TotalMilliseconds, 0),
            ["loadavg_1m"] = LoadAverage(),
            ["marks_ms"] = marks.ToDictionary(m => m.Key, m => Math.Round(m.Value, 1)),
        };

        // Breakdown, after the measurement: the same bulk load and pure recovery again, now warm.
        var settingsJournal = settings.Journal;
        var load = Stopwatch.StartNew();
        var journal = JournalLoader.Load(settingsJournal);
        result["warm_journal_load_ms"] = Math.Round(load.Elapsed.TotalMilliseconds, 1);
        var recover = Stopwatch.StartNew();
        var recovered = CollectionRecovery.Recover(journal);
        result["warm_collection_recover_ms"] = Math.Round(recover.Elapsed.TotalMilliseconds, 1);
        result["events_loaded"] = journal.Qubes.Sum(s => s.Events.Count) + (journal.Collection?.Events.Count ?? 0);
        GC.KeepAlive(recovered);
        journal = null;
        recovered = null;

        if (idleMemory)
        {
            Collect();
            await Task.Delay(TimeSpan.FromSeconds(2));
            Collect();
            result["vmrss_kb"] = Report.ProcStatusKb("VmRSS");
            result["vmhwm_kb"] = Report.ProcStatusKb("VmHWM");
            result["managed_heap_bytes"] = GC.GetTotalMemory(forceFullCollection: false);
            result["gc_heap_size_bytes"] = GC.GetGCMemoryInfo().HeapSizeBytes;
            result["threads"] = Process.GetCurrentProcess().Threads.Count;
        }
        Console.Out.WriteLine(ResultPrefix + JsonSerializer.Serialize(result));
        Console.Out.Flush();
        await host.StopAsync();
        return refused.Count == 0 ? 0 : 1;
    }

    /// <summary>load-once: only the bulk read, cold, in a fresh process (JIT + connection + query + decode + chain).</summary>
    public static int LoadOnce(BenchStore store)
    {
        var main = SinceProcessStart();
        var clock = Stopwatch.StartNew();
        var settings = store.Settings();
        var settingsMs = clock.Elapsed.TotalMilliseconds;
        var journal = JournalLoader.Load(settings.Journal);
        var loadMs = clock.Elapsed.TotalMilliseconds - settingsMs;
        var recover = Stopwatch.StartNew();
        var recovered = CollectionRecovery.Recover(journal);
        var recoverMs = recover.Elapsed.TotalMilliseconds;
        var again = Stopwatch.StartNew();
        JournalLoader.Load(settings.Journal);
        var warmLoadMs = again.Elapsed.TotalMilliseconds;
        Console.Out.WriteLine(ResultPrefix + JsonSerializer.Serialize(new
        {
            main_ms = Math.Round(main, 1),
            settings_ms = Math.Round(settingsMs, 1),
            cold_load_ms = Math.Round(loadMs, 1),
            cold_recover_ms = Math.Round(recoverMs, 1),
            warm_load_ms = Math.Round(warmLoadMs, 1),
            qubes = recovered.State.Qubes.Count,
        }));
        return 0;
    }

    private static void Collect()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    // ------------------------------------------------------------------ parent side

    public sealed record ChildRun(double WallMs, JsonElement Result);

    /// <summary>Starts this bench again with a hidden subcommand; wall time runs from Process.Start to the RESULT line.</summary>
    public static async Task<ChildRun> RunAsync(string subcommand, BenchStore store, params string[] extra)
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var info = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(path) == "dotnet")
        {
            info.FileName = path;
            info.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }
        else
            info.FileName = path;
        info.ArgumentList.Add(subcommand);
        info.ArgumentList.Add("--state-dir");
        info.ArgumentList.Add(store.StateDir);
        info.ArgumentList.Add("--provider");
        info.ArgumentList.Add(store.Provider);
        if (store.ConnectionString is not null)
        {
            info.ArgumentList.Add("--connection-string");
            info.ArgumentList.Add(store.ConnectionString);
        }
        foreach (var e in extra)
            info.ArgumentList.Add(e);

        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info) ?? throw new InvalidOperationException("child did not start");
        var stderr = process.StandardError.ReadToEndAsync();
        string? line;
        double wall = 0;
        JsonElement? result = null;
        var other = new List<string>();
        while ((line = await process.StandardOutput.ReadLineAsync()) is not null)
        {
            if (line == PingedLine && wall == 0)
                wall = clock.Elapsed.TotalMilliseconds;
            else if (line.StartsWith(ResultPrefix, StringComparison.Ordinal) && result is null)
            {
                if (wall == 0)
                    wall = clock.Elapsed.TotalMilliseconds;
                result = JsonDocument.Parse(line[ResultPrefix.Length..]).RootElement.Clone();
            }
            else
                other.Add(line);
        }
        await process.WaitForExitAsync();
        var err = await stderr;
        if (result is null || process.ExitCode != 0)
            throw new InvalidOperationException($"{subcommand} exited {process.ExitCode} without a clean result:\n{string.Join('\n', other.TakeLast(20))}\n{err[Math.Max(0, err.Length - 3000)..]}");
        return new ChildRun(wall, result.Value);
    }
}
