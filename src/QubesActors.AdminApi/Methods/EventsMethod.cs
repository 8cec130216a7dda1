using QubesActors.AdminApi.Wire;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// admin.Events: an artificial <c>connection-established</c> event, then every notice of the event hub as an
/// event frame (no ok frame follows). dom0 as destination receives everything; a qube only its own events.
/// </summary>
public static class EventsMethod
{
    public static IEnumerable<AdminMethod> All =>
    [
        new("admin.Events", MethodScope.Global, MethodAccess.Read, DestinationKind.Any, Presence.None, Presence.None, Stream, Streams: true),
    ];

    /// <summary>Events qubesd never sends through admin.Events (§2.1).</summary>
    public static bool IsDeliverable(string eventName) =>
        !(eventName.StartsWith("admin-permission:", StringComparison.Ordinal) || eventName.StartsWith("device-get:", StringComparison.Ordinal)
          || eventName.StartsWith("device-list:", StringComparison.Ordinal) || eventName.StartsWith("device-list-attached:", StringComparison.Ordinal)
          || eventName == "domain-is-fully-usable");

    private static async Task<AdminReply> Stream(AdminCall call, CancellationToken ct)
    {
        await using var subscription = await call.Qubes.SubscribeAsync(ct).ConfigureAwait(false);
        await call.Frames.WriteAsync(AdminFrames.EncodeEvent("", "connection-established", []), ct).ConfigureAwait(false);
        var only = call.DestIsAdmin ? null : call.Dest.Name;
        await foreach (var notice in subscription.Events.ReadAllAsync(ct).ConfigureAwait(false))
        {
            if (!IsDeliverable(notice.Event) || (only is not null && notice.Subject != only))
                continue;
            await call.Frames.WriteAsync(AdminFrames.EncodeEvent(notice.Subject, notice.Event, notice.Arguments), ct).ConfigureAwait(false);
        }
        return new AdminReply.Streamed();
    }
}
