using System.Diagnostics;
using System.Globalization;
using Akka;
using Akka.Actor;
using Akka.Persistence;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Bench;

/// <summary>
/// qubes-audit on a generated journal (AuditJournalGenerator): each command as the user runs it, a process of its own
/// (the dotnet host's start included), median of the runs; and --follow: the time from a row's persistence (the
/// journal's confirmation) to the follower printing it.
/// </summary>
public static class AuditBench
{
    public static async Task<int> RunAsync(string stateDir, int qubes, long events, int runs, string commandLine)
    {
        var settings = JournalSettings.SqliteFile(Path.Combine(stateDir, "journal.db"));
        if (!File.Exists(Path.Combine(stateDir, "journal.db")))
        {
            Console.Error.WriteLine($"generating {events:N0} events over {qubes:N0} qubes into {stateDir}");
            var generated = await AuditJournalGenerator.GenerateAsync(settings, qubes, events);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"generated {generated.Events:N0} events and {generated.Seals} seals in {generated.Elapsed.TotalSeconds:0.0} s ({new FileInfo(Path.Combine(stateDir, "journal.db")).Length / 1048576.0:0} MiB)"));
        }
        // What qubesd's sealer does at every start (a journal generated before the index existed gets it here).
        JournalSealer.ReadPosition(settings);
        var target = AuditJournalGenerator.NameOf(qubes / 2);
        var rows = new List<string[]>();
        var medians = new Dictionary<string, double>();
        foreach (var (label, args) in new (string, string[])[]
                 {
                     ($"log --qube {target}", ["log", "--qube", target]),
                     ($"show {target}", ["show", target]),
                     ("verify", ["verify"]),
                     ("log -n 20 --kind policy", ["log", "-n", "20", "--kind", "policy"]),
                     ("stats", ["stats"]),
                     ("report --html", ["report", "--html", Path.Combine(stateDir, "report.html")]),
                 })
        {
            var times = new List<double>();
            var lines = 0;
            var exit = 0;
            for (var r = 0; r < runs; r++)
            {
                var (ms, code, count) = await TimeProcessAsync(stateDir, args);
                times.Add(ms);
                lines = count;
                exit = code;
            }
            times.Sort();
            medians[label] = times[times.Count / 2];
            Report.JsonLine(new { bench = "audit", events, qubes, command = label, median_ms = times[times.Count / 2], min_ms = times[0], max_ms = times[^1], lines, exit, commandLine });
            rows.Add([label, $"{times[times.Count / 2]:0}", $"{times[0]:0}", $"{times[^1]:0}", lines.ToString(CultureInfo.InvariantCulture), exit.ToString(CultureInfo.InvariantCulture)]);
        }
        Report.Table($"qubes-audit on {events:N0} events / {qubes:N0} qubes (SQLite), wall time of the process in ms, {runs} runs  [{commandLine}]",
            ["command", "median", "min", "max", "lines", "exit"], rows);

        var latencies = await FollowLatencyAsync(settings, stateDir, 10);
        latencies.Sort();
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"log --follow: a new event printed {latencies[latencies.Count / 2]:0} ms (median; min {latencies[0]:0}, max {latencies[^1]:0}) after its persistence, {latencies.Count} events: {string.Join(" ", latencies.Select(l => l.ToString("0", CultureInfo.InvariantCulture)))}"));
        var goals = new (string Name, bool Met)[]
        {
            ("log --qube < 1 s", medians[$"log --qube {target}"] < 1000),
            ("show < 1 s", medians[$"show {target}"] < 1000),
            ("verify < 10 s", medians["verify"] < 10_000),
            ("--follow < 500 ms", latencies[latencies.Count / 2] < 500),
        };
        Report.JsonLine(new { bench = "audit", events, qubes, follow_median_ms = latencies[latencies.Count / 2], follow_max_ms = latencies[^1], commandLine });
        Console.WriteLine("goals: " + string.Join(", ", goals.Select(g => $"{g.Name}: {(g.Met ? "MET" : "MISSED")}")));
        return goals.All(g => g.Met) ? 0 : 1;
    }

    private static async Task<(double Ms, int Exit, int Lines)> TimeProcessAsync(string stateDir, string[] args)
    {
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(Info(stateDir, args))!;
        var lines = 0;
        while (await process.StandardOutput.ReadLineAsync() is not null)
            lines++;
        await process.WaitForExitAsync();
        return (clock.Elapsed.TotalMilliseconds, process.ExitCode, lines);
    }

    private static ProcessStartInfo Info(string stateDir, string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "qubes-audit.dll"));
        info.ArgumentList.Add("--state-dir");
        info.ArgumentList.Add(stateDir);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        return info;
    }

    /// <summary>A follower of a qube that does not exist yet; that qube's events are then written one at a time.</summary>
    private static async Task<List<double>> FollowLatencyAsync(JournalSettings settings, string stateDir, int count)
    {
        var name = $"follow-{Guid.NewGuid():N}"[..20];
        using var follower = Process.Start(Info(stateDir, ["log", "--follow", "--qube", name, "-o", "jsonl"]))!;
        _ = follower.StandardError.ReadToEndAsync();
        var printed = System.Threading.Channels.Channel.CreateUnbounded<long>();
        _ = Task.Run(async () =>
        {
            while (await follower.StandardOutput.ReadLineAsync() is not null)
                printed.Writer.TryWrite(Stopwatch.GetTimestamp());
        });
        var system = ActorSystem.Create("audit-follow-bench", RuntimeConfig.For(settings).WithFallback("akka.loglevel = WARNING"));
        var latencies = new List<double>();
        try
        {
            var journal = Persistence.Instance.Apply(system).JournalFor(null);
            var uuid = Guid.NewGuid();
            var stream = new JournalStream(JournalSettings.PersistenceIdOf(uuid), 0, "", journal);
            // The follower has read the (empty) history, started the live query and caught up with the journal.
            await Task.Delay(TimeSpan.FromSeconds(5));
            for (var i = 0; i < count; i++)
            {
                var now = DateTimeOffset.UtcNow;
                var cause = EventCause.Admin("dom0", "bench");
                QubeEvent e = i == 0
                    ? new QubeCreated(uuid, name, QubeClass.AppVM, 9999, "red", System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty,
                        System.Collections.Immutable.ImmutableSortedSet<string>.Empty, System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty, null, null)
                    { Time = now, Cause = cause }
                    : new QubePropertySet("memory", (400 + i).ToString(CultureInfo.InvariantCulture)) { Time = now, Cause = cause };
                var waiter = system.ActorOf(Props.Create(() => new Waiter()));
                var write = stream.Prepare([e], waiter);
                await waiter.Ask<long>(new Send(journal, write.Message), TimeSpan.FromSeconds(30));
                var persisted = Stopwatch.GetTimestamp();
                stream.Commit(write);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var shown = await printed.Reader.ReadAsync(timeout.Token);
                latencies.Add(Stopwatch.GetElapsedTime(persisted, shown).TotalMilliseconds);
                await Task.Delay(Random.Shared.Next(200, 700));
            }
        }
        finally
        {
            follower.Kill();
            await system.Terminate();
        }
        return latencies;
    }

    private sealed record Send(IActorRef Journal, WriteMessages Message);

    private sealed class Waiter : ReceiveActor
    {
        private IActorRef? _asker;

        public Waiter()
        {
            Receive<Send>(s =>
            {
                _asker = Sender;
                s.Journal.Tell(s.Message);
            });
            Receive<WriteMessagesSuccessful>(_ =>
            {
                _asker?.Tell(Stopwatch.GetTimestamp());
                Context.Stop(Self);
            });
            Receive<WriteMessagesFailed>(f => _asker?.Tell(new Status.Failure(f.Cause)));
            ReceiveAny(_ => { });
        }
    }
}
