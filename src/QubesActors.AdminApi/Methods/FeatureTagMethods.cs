using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>admin.vm.feature.{List,Get,Set,Remove} and admin.vm.tag.{List,Get,Set,Remove}.</summary>
public static class FeatureTagMethods
{
    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.vm.feature.List", DestinationKind.Any, (call, _) => Ok(Lines(call.Dest.Features.Keys))),
        Read("admin.vm.feature.Get", DestinationKind.Any, (call, _) =>
            Ok(call.Dest.Features.TryGetValue(call.Arg, out var value) ? value : throw new QubesFeatureNotFoundError(call.Dest.Name, call.Arg)),
            arg: Presence.Required),
        Write("admin.vm.feature.Set", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.SetFeature(call.Dest.Name, call.Arg, call.UntrustedPayloadAscii(), call.Caller), ct),
            arg: Presence.Required, payload: Presence.Optional),
        Write("admin.vm.feature.Remove", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.RemoveFeature(call.Dest.Name, call.Arg, call.Caller), ct), arg: Presence.Required),
        Read("admin.vm.feature.CheckWithTemplate", DestinationKind.Any, (call, _) => Ok(Check(call, Templates(call))), arg: Presence.Required),
        Read("admin.vm.feature.CheckWithNetvm", DestinationKind.Any, (call, _) => Ok(Check(call, NetVms(call))), arg: Presence.Required),
        Read("admin.vm.feature.CheckWithAdminVM", DestinationKind.Any, (call, _) => Ok(Check(call, [call.Dest, Admin(call)])), arg: Presence.Required),
        Read("admin.vm.feature.CheckWithTemplateAndAdminVM", DestinationKind.Any, (call, _) => Ok(Check(call, [.. Templates(call), Admin(call)])),
            arg: Presence.Required),

        Read("admin.vm.tag.List", DestinationKind.Any, (call, _) => Ok(Lines(call.Dest.Tags))),
        Read("admin.vm.tag.Get", DestinationKind.Any, (call, _) => Ok(call.Dest.Tags.Contains(call.Arg) ? "1" : "0"), arg: Presence.Required),
        Write("admin.vm.tag.Set", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.AddTag(call.Dest.Name, call.Arg, call.Caller), ct), arg: Presence.Required),
        Write("admin.vm.tag.Remove", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.RemoveTag(call.Dest.Name, call.Arg, call.Caller), ct), arg: Presence.Required),
    ];

    /// <summary>The first value along <paramref name="chain"/> (the destination first).</summary>
    private static string Check(AdminCall call, IEnumerable<QubeState> chain)
    {
        foreach (var qube in chain)
            if (qube.Features.TryGetValue(call.Arg, out var value))
                return value;
        throw new QubesFeatureNotFoundError(call.Dest.Name, call.Arg);
    }

    /// <summary>The destination, its template, that template's template, ... (a loop cannot exist, but is cut anyway).</summary>
    private static IEnumerable<QubeState> Templates(AdminCall call)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var q = call.Dest; q is not null && seen.Add(q.Name); q = call.State.TemplateOf(q))
            yield return q;
    }

    private static IEnumerable<QubeState> NetVms(AdminCall call)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var q = call.Dest; q is not null && seen.Add(q.Name); q = call.State.NetVmOf(q))
            yield return q;
    }

    private static QubeState Admin(AdminCall call) => call.State.Get(CollectionState.AdminName);
}
