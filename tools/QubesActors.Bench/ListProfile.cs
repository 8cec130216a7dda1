using System.Buffers;
using Akka.Actor;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;
using QubesActors.AdminApi.Methods;
using QubesActors.AdminApi.Wire;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;

namespace QubesActors.Bench;

/// <summary>
/// profile-list (hidden): the admin.vm.List answer for N qubes built in-process, the way the handler builds it today and
/// the alternatives suggested for Methods/ (sort once, UTF-8 straight into the frame, one cached frame per collection state).
/// </summary>
public static class ListProfile
{
    public static async Task<int> RunAsync(int qubes, int iterations)
    {
        var store = await BenchStore.CreateAsync("sqlite", null, "list");
        try
        {
            CollectionState state;
            await using (var host = await RunningHost.StartAsync(store))
            {
                await Parallel.RunAsync(qubes, 64, async i =>
                {
                    if (await host.Ask(Commands.Create(i)) is QubesProtocol.Refused r)
                        throw new InvalidOperationException(r.Error.Message);
                });
                state = (await host.Qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), host.Timeout)).State;
            }
            var current = Measure("today: OrderBy/ThenBy, StringBuilder -> string, EncodeOk(string)", iterations,
                () => AdminFrames.EncodeOk(Lines(InListOrder(state.Qubes.Values).Select(VmMethods.ListLine))));
            var sorted = Measure("Array.Sort once, interpolated lines, StringBuilder -> string, EncodeOk(string)", iterations,
                () => AdminFrames.EncodeOk(Lines(Sorted(state).Select(VmMethods.ListLine))));
            var utf8 = Measure("Array.Sort once, UTF-8 straight into a pooled writer, one frame array", iterations, () => Utf8Frame(state));
            var cache = new ConditionalWeakTable<CollectionState, byte[]>();
            var cached = Measure("cached frame per CollectionState instance (hit)", iterations, () => cache.GetValue(state, Utf8Frame));
            var same = Encoding.UTF8.GetString(Utf8Frame(state)) == Encoding.UTF8.GetString(AdminFrames.EncodeOk(Lines(InListOrder(state.Qubes.Values).Select(VmMethods.ListLine))));
            Report.Table($"admin.vm.List answer of {state.Qubes.Count} qubes built in-process ({iterations} iterations, after {iterations / 10} warm-up; identical bytes: {same})",
                ["variant", "p50 us", "p90 us", "alloc KB/call", "gen0/1/2 GCs"],
                new[] { current, sorted, utf8, cached }.Select(r => new[] { r.Name, Stats.F(r.P50, 0), Stats.F(r.P90, 0), Stats.F(r.AllocKb, 1), r.Gcs }));
            Console.WriteLine($"(loadavg {Child.LoadAverage()})");
            return same ? 0 : 1;
        }
        finally
        {
            await store.DropAsync();
        }
    }

    private sealed record Result(string Name, double P50, double P90, double AllocKb, string Gcs);

    private static Result Measure(string name, int iterations, Func<byte[]> build)
    {
        for (var i = 0; i < iterations / 10; i++)
            build();
        var samples = new double[iterations];
        var alloc = GC.GetAllocatedBytesForCurrentThread();
        var gcs = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        for (var i = 0; i < iterations; i++)
        {
            var clock = Stopwatch.GetTimestamp();
            build();
            samples[i] = Stopwatch.GetElapsedTime(clock).TotalMicroseconds;
        }
        var allocKb = (GC.GetAllocatedBytesForCurrentThread() - alloc) / 1024.0 / iterations;
        return new Result(name, Stats.Percentile(samples, 50), Stats.Percentile(samples, 90), allocKb,
            $"{GC.CollectionCount(0) - gcs.Item1}/{GC.CollectionCount(1) - gcs.Item2}/{GC.CollectionCount(2) - gcs.Item3}");
    }

    // Copies of Methods/Handlers (internal) as they are today.
    private static string Lines(IEnumerable<string> lines)
    {
        var text = new StringBuilder();
        foreach (var line in lines)
            text.Append(line).Append('\n');
        return text.ToString();
    }

    private static IEnumerable<QubeState> InListOrder(IEnumerable<QubeState> qubes) =>
        qubes.OrderBy(q => q.Class == QubeClass.AdminVM ? 0 : 1).ThenBy(q => q.Name, StringComparer.Ordinal);

    private static readonly Comparison<QubeState> ListOrder = (a, b) =>
    {
        var admin = (a.Class == QubeClass.AdminVM ? 0 : 1).CompareTo(b.Class == QubeClass.AdminVM ? 0 : 1);
        return admin != 0 ? admin : string.CompareOrdinal(a.Name, b.Name);
    };

    private static QubeState[] Sorted(CollectionState state)
    {
        var qubes = state.Qubes.Values.ToArray();
        Array.Sort(qubes, ListOrder);
        return qubes;
    }

    private static byte[] Utf8Frame(CollectionState state)
    {
        var writer = new ArrayBufferWriter<byte>(2 + state.Qubes.Count * 80);
        writer.Write<byte>([AdminFrames.Ok, 0]);
        foreach (var q in Sorted(state))
        {
            var span = writer.GetSpan(256);
            if (!Utf8.TryWrite(span, $"{q.Name} class={q.Class} state={q.Power.Wire()} uuid={q.Uuid}\n", out var n))
                throw new InvalidOperationException("line longer than 256 bytes");
            writer.Advance(n);
        }
        return writer.WrittenSpan.ToArray();
    }
}
