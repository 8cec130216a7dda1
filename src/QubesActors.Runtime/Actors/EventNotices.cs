using QubesActors.Core.Events;
using QubesActors.Core.Model;

namespace QubesActors.Runtime.Actors;

/// <summary>The admin.Events notices (docs/qubes-semantics.md §2.1) that follow a persisted event.</summary>
public static class EventNotices
{
    public static IEnumerable<QubesEventNotice> After(QubeState before, QubeEvent e)
    {
        var q = before.Name;
        switch (e)
        {
            case QubeCreated c:
                yield return QubesEventNotice.Of("", "domain-add", ("vm", c.Name));
                break;
            case QubeRemoved:
                yield return QubesEventNotice.Of("", "domain-delete", ("vm", q));
                break;
            case QubePropertySet p:
                var old = p.Property == "label" ? before.Label : before.Property(p.Property);
                yield return old is null
                    ? QubesEventNotice.Of(q, $"property-set:{p.Property}", ("name", p.Property), ("newvalue", p.Value))
                    : QubesEventNotice.Of(q, $"property-set:{p.Property}", ("name", p.Property), ("newvalue", p.Value), ("oldvalue", old));
                if (p.Property == "label")
                    yield return QubesEventNotice.Of(q, "property-reset:icon", ("name", "icon"));
                break;
            case QubePropertyReset p:
                yield return before.Property(p.Property) is { } oldValue
                    ? QubesEventNotice.Of(q, $"property-reset:{p.Property}", ("name", p.Property), ("oldvalue", oldValue))
                    : QubesEventNotice.Of(q, $"property-reset:{p.Property}", ("name", p.Property));
                break;
            case QubeFeatureSet f:
                yield return before.Features.TryGetValue(f.Feature, out var oldFeature)
                    ? QubesEventNotice.Of(q, $"domain-feature-set:{f.Feature}", ("feature", f.Feature), ("value", f.Value), ("oldvalue", oldFeature))
                    : QubesEventNotice.Of(q, $"domain-feature-set:{f.Feature}", ("feature", f.Feature), ("value", f.Value));
                break;
            case QubeFeatureRemoved f:
                yield return QubesEventNotice.Of(q, $"domain-feature-delete:{f.Feature}", ("feature", f.Feature));
                break;
            case QubeTagAdded t:
                yield return QubesEventNotice.Of(q, $"domain-tag-add:{t.Tag}", ("tag", t.Tag));
                break;
            case QubeTagRemoved t:
                yield return QubesEventNotice.Of(q, $"domain-tag-delete:{t.Tag}", ("tag", t.Tag));
                break;
            case QubeFirewallSet:
                yield return QubesEventNotice.Of(q, "firewall-changed");
                break;
            case QubeStarted:
                yield return QubesEventNotice.Of(q, "domain-spawn");
                yield return QubesEventNotice.Of(q, "domain-start");
                break;
            case QubeStartFailed f:
                yield return QubesEventNotice.Of(q, "domain-start-failed", ("reason", f.Reason));
                break;
            case QubeStopped:
                yield return QubesEventNotice.Of(q, "domain-stopped");
                yield return QubesEventNotice.Of(q, "domain-shutdown");
                break;
            case QubePaused:
                yield return QubesEventNotice.Of(q, "domain-paused");
                break;
            case QubeUnpaused:
                yield return QubesEventNotice.Of(q, "domain-unpaused");
                break;
            case QubeSuspended:
                yield return QubesEventNotice.Of(q, "domain-suspended");
                break;
            case QubeResumed:
                yield return QubesEventNotice.Of(q, "domain-resumed");
                break;
            case QubeFailed f:
                yield return QubesEventNotice.Of(q, "domain-failed", ("reason", f.Reason));
                break;
            case QubeNetworkAttached n:
                yield return QubesEventNotice.Of(n.NetVm, "net-domain-connect", ("vm", q));
                break;
            case QubeDeviceAssigned d:
                yield return QubesEventNotice.Of(q, $"device-assign:{d.DeviceClass}", ("device", d.Device), ("mode", d.Mode));
                break;
            case QubeDeviceUnassigned d:
                yield return QubesEventNotice.Of(q, $"device-unassign:{d.DeviceClass}", ("device", d.Device));
                break;
            case QubeDeviceAssignmentChanged d:
                yield return QubesEventNotice.Of(q, $"device-assignment-changed:{d.DeviceClass}", ("device", d.Device), ("mode", d.Mode));
                break;
            case QubeDeviceAttached d:
                yield return QubesEventNotice.Of(q, $"device-attach:{d.DeviceClass}", ("device", d.Device));
                break;
            case QubeDeviceDetached d:
                yield return QubesEventNotice.Of(q, $"device-detach:{d.DeviceClass}", ("port", d.Device));
                break;
        }
    }

    public static IEnumerable<QubesEventNotice> After(CollectionEvent e) => e switch
    {
        GlobalPropertySet p => [QubesEventNotice.Of("", $"property-set:{p.Property}", ("name", p.Property), ("newvalue", p.Value))],
        GlobalPropertyReset p => [QubesEventNotice.Of("", $"property-reset:{p.Property}", ("name", p.Property))],
        _ => [],
    };
}
