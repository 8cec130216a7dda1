using System.Diagnostics;
using QubesActors.Runtime.Actors;

namespace QubesActors.Bench;

/// <summary>
/// Writes a journal of N qubes x ~50 events through the real host and actors, so every event is the one the runtime
/// writes (chained, tagged, serialized by its own codec). Per qube, in order: create (1 event), property and feature
/// sets (7), then lifecycle cycles start/pause/unpause/shutdown (4 events each) until the target; every qube ends halted.
/// Many qubes run their scripts at once.
/// </summary>
public static class JournalGenerator
{
    private static readonly (string Property, string Value)[] PropertySets = [("memory", "512"), ("maxmem", "2048"), ("vcpus", "1"), ("kernelopts", "quiet"), ("debug", "True")];

    public static async Task<(TimeSpan Elapsed, long Rows)> GenerateAsync(BenchStore store, int qubes, int eventsPerQube, int concurrency)
    {
        var clock = Stopwatch.StartNew();
        var failures = 0;
        string? firstFailure = null;
        await using (var host = await RunningHost.StartAsync(store))
        {
            var progress = 0;
            await Parallel.RunAsync(qubes, concurrency, async i =>
            {
                foreach (var command in Script(i, eventsPerQube))
                    if (await host.Ask(command) is QubesProtocol.Refused r)
                    {
                        Interlocked.Increment(ref failures);
                        firstFailure ??= $"{command.GetType().Name} {Commands.NameOf(i)}: {r.Error.Message}";
                        break;
                    }
                var done = Interlocked.Increment(ref progress);
                if (done % Math.Max(1, qubes / 10) == 0)
                    Console.Error.WriteLine($"  generated {done}/{qubes} qubes ({clock.Elapsed.TotalSeconds:0.0} s)");
            });
        }
        if (failures > 0)
            throw new InvalidOperationException($"journal generation: {failures} qubes failed, first: {firstFailure}");
        return (clock.Elapsed, store.CountJournalRows());
    }

    /// <summary>The commands of one qube; the count of events they write is 1 + sets + 4 x cycles.</summary>
    public static IEnumerable<QubesProtocol.IQubesCommand> Script(int i, int eventsPerQube)
    {
        var name = Commands.NameOf(i);
        var caller = Commands.Caller;
        yield return Commands.Create(i);
        // 50 events: the creation, 9 sets (5 properties, 4 features) and 10 cycles of 4 events.
        var sets = Math.Min(7, Math.Max(0, eventsPerQube - 1));
        var cycles = (eventsPerQube - 1 - sets) / 4;
        sets += Math.Max(0, eventsPerQube - 1 - sets - 4 * cycles);
        for (var s = 0; s < sets; s++)
            yield return s < PropertySets.Length
                ? new QubesProtocol.SetProperty(name, PropertySets[s].Property, PropertySets[s].Value, caller)
                : new QubesProtocol.SetFeature(name, $"bench.f{s}", $"v{s}", caller);
        for (var c = 0; c < cycles; c++)
        {
            yield return new QubesProtocol.StartQube(name, caller);
            yield return new QubesProtocol.PauseQube(name, caller);
            yield return new QubesProtocol.UnpauseQube(name, caller);
            yield return new QubesProtocol.ShutdownQube(name, false, true, caller);
        }
    }
}
