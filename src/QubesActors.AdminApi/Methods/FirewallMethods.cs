using QubesActors.Core.Firewall;
using QubesActors.Runtime.Actors;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>admin.vm.firewall.{Get,Set,Reload} (docs/qubes-semantics.md §4); dom0 has no firewall.</summary>
public static class FirewallMethods
{
    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.vm.firewall.Get", DestinationKind.NotAdminVm, (call, _) => Ok(Rules(call.Dest.Firewall, DateTimeOffset.UtcNow))),
        Write("admin.vm.firewall.Set", DestinationKind.NotAdminVm, (call, ct) =>
            Send(call, new QubesProtocol.SetFirewall(call.Dest.Name, call.UntrustedPayloadAscii(), call.Caller), ct), payload: Presence.Optional),
        new("admin.vm.firewall.Reload", MethodScope.Local, MethodAccess.Execute, DestinationKind.NotAdminVm, Presence.None, Presence.None,
            (call, ct) => Send(call, new QubesProtocol.ReloadFirewall(call.Dest.Name, call.Caller), ct)),
    ];

    /// <summary>
    /// The rules in force, one per line. A qube without custom rules has upstream's implicit
    /// <c>action=accept</c>; expired rules are gone, as qubesd drops them when it reloads.
    /// </summary>
    public static string Rules(System.Collections.Immutable.ImmutableArray<string>? stored, DateTimeOffset now)
    {
        if (stored is not { } lines)
            return FirewallRuleSet.FormatRules(FirewallRules.Default);
        var parsed = FirewallRuleSet.ParseRules(string.Concat(lines.Select(l => l + "\n")));
        return FirewallRuleSet.FormatRules(FirewallRuleSet.Active(parsed, now));
    }
}
