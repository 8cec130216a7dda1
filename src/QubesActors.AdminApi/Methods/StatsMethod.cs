using System.Globalization;
using QubesActors.AdminApi.Wire;
using QubesActors.Core.Model;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// admin.vm.Stats: <c>connection-established</c>, then every <c>stats_interval</c> seconds one <c>vm-stats</c> event per
/// running qube (all for dom0 as destination, else only the destination), until the client goes away.
/// </summary>
public static class StatsMethod
{
    public static IEnumerable<AdminMethod> All =>
    [
        new("admin.vm.Stats", MethodScope.Global, MethodAccess.Read, DestinationKind.Any, Presence.None, Presence.None, Stream, Streams: true),
    ];

    private static async Task<AdminReply> Stream(AdminCall call, CancellationToken ct)
    {
        await call.Frames.WriteAsync(AdminFrames.EncodeEvent("", "connection-established", []), ct).ConfigureAwait(false);
        var only = call.DestIsAdmin ? null : call.Dest.Name;
        var snapshot = call.Snapshot;
        while (!ct.IsCancellationRequested)
        {
            foreach (var frame in Frames(snapshot.State, only))
                await call.Frames.WriteAsync(frame, ct).ConfigureAwait(false);
            var interval = Math.Max(1, int.TryParse(snapshot.State.GlobalEffective("stats_interval"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 3);
            await Task.Delay(TimeSpan.FromSeconds(interval), ct).ConfigureAwait(false);
            snapshot = await call.Qubes.SnapshotAsync(ct).ConfigureAwait(false);
        }
        return new AdminReply.Streamed();
    }

    /// <summary>
    /// One <c>vm-stats</c> frame per active qube. The simulated backend accounts no CPU time, so cpu_time and
    /// cpu_usage are 0; memory is what the domain was given.
    /// </summary>
    public static IEnumerable<byte[]> Frames(CollectionState state, string? only)
    {
        foreach (var q in Handlers.InListOrder(state.Qubes.Values))
        {
            if (!q.Power.IsActive() || (only is not null && q.Name != only))
                continue;
            var memoryKb = q.Class == QubeClass.AdminVM
                ? long.Parse(state.GlobalEffective("maxmem") ?? "0", CultureInfo.InvariantCulture) * 1024L
                : state.EffectiveInt(q, "memory") * 1024L;
            yield return AdminFrames.EncodeEvent(q.Name, "vm-stats",
            [
                new("memory_kb", memoryKb.ToString(CultureInfo.InvariantCulture)),
                new("cpu_time", "0"),
                new("cpu_usage", "0"),
                new("cpu_usage_raw", "0"),
            ]);
        }
    }
}
