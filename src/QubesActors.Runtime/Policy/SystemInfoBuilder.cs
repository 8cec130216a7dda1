using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using QubesActors.Core.Model;
using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>What the policy knows about the qubes (qubesd's <c>internal.GetSystemInfo</c>), built from the live collection.</summary>
public static class SystemInfoBuilder
{
    // Collection states are immutable and replaced on every change: one SystemInfo per state serves every decision until then.
    private static readonly ConditionalWeakTable<CollectionState, SystemInfo> Cache = new();

    public static SystemInfo Of(CollectionState state) => Cache.GetValue(state, Build);

    private static SystemInfo Build(CollectionState state)
    {
        var domains = ImmutableSortedDictionary.CreateBuilder<string, SystemDomain>(StringComparer.Ordinal);
        foreach (var q in state.Qubes.Values)
        {
            if (q.Removed)
                continue;
            var dispvm = q.Class == QubeClass.AdminVM ? null : state.Effective(q, "default_dispvm");
            domains[q.Name] = new SystemDomain(
                Type: q.Class.ToString(),
                Tags: [.. q.Tags],
                TemplateForDispVms: q.Class != QubeClass.AdminVM && state.EffectiveBool(q, "template_for_dispvms"),
                DefaultDispVm: string.IsNullOrEmpty(dispvm) ? null : dispvm,
                PowerState: q.Power.ToString(),
                Uuid: q.Uuid,
                // upstream: the feature is set (any non-empty value counts) -> hidden from ask lists
                Internal: q.Features.TryGetValue("internal", out var i) && i.Length > 0);
        }
        return new SystemInfo(domains.ToImmutable());
    }
}
