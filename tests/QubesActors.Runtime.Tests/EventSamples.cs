using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Model;

namespace QubesActors.Runtime.Tests;

/// <summary>One fully populated instance of every persisted event type, with fixed time, cause and chain link.</summary>
public static class EventSamples
{
    private static readonly DateTimeOffset Time = new(2026, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
    private static readonly EventCause Cause = EventCause.Admin("dom0", "admin.vm.Start");
    private const string Prev = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

    private static T Stamp<T>(T e) where T : DomainEvent => e with { Time = Time, Cause = Cause, PrevHash = Prev };

    private static readonly ImmutableSortedDictionary<string, string> Options =
        ImmutableSortedDictionary<string, string>.Empty.Add("_readonly", "yes").Add("frontend-domain", "work");

    public static IReadOnlyDictionary<Type, DomainEvent> All { get; } = new DomainEvent[]
    {
        Stamp(new QubeCreated(Guid.Parse("6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0"), "work", QubeClass.AppVM, 7, "blue",
            ImmutableSortedDictionary<string, string>.Empty.Add("netvm", "sys-firewall").Add("template", "fedora"),
            ImmutableSortedSet.Create("audited", "created-by-dom0"),
            ImmutableSortedDictionary<string, string>.Empty.Add("service.cups", "1"),
            ["action=accept dsthost=example.com", "action=drop"], 42) { Time = Time, Cause = Cause }),
        Stamp(new QubePropertySet("memory", "800") { Time = Time, Cause = Cause }),
        Stamp(new QubePropertyReset("memory") { Time = Time, Cause = Cause }),
        Stamp(new QubeFeatureSet("service.cups", "1") { Time = Time, Cause = Cause }),
        Stamp(new QubeFeatureRemoved("service.cups") { Time = Time, Cause = Cause }),
        Stamp(new QubeTagAdded("audited") { Time = Time, Cause = Cause }),
        Stamp(new QubeTagRemoved("audited") { Time = Time, Cause = Cause }),
        Stamp(new QubeNotesSet("quarterly reports") { Time = Time, Cause = Cause }),
        Stamp(new QubeFirewallSet(["action=accept proto=tcp dstports=443-443", "action=drop"]) { Time = Time, Cause = Cause }),
        Stamp(new QubeStarting("sys-firewall") { Time = Time, Cause = Cause }),
        Stamp(new QubeStarted(PowerState.Running) { Time = Time, Cause = Cause }),
        Stamp(new QubeStartFailed("Start failed: no memory") { Time = Time, Cause = Cause }),
        Stamp(new QubeShuttingDown(true) { Time = Time, Cause = Cause }),
        Stamp(new QubeStopped(StopKind.Crashed, "simulated crash") { Time = Time, Cause = EventCause.Backend("simulated crash") }),
        Stamp(new QubePaused { Time = Time, Cause = Cause }),
        Stamp(new QubeUnpaused { Time = Time, Cause = Cause }),
        Stamp(new QubeSuspended { Time = Time, Cause = Cause }),
        Stamp(new QubeResumed { Time = Time, Cause = Cause }),
        Stamp(new QubeAdopted(PowerState.Paused) { Time = Time, Cause = Cause }),
        Stamp(new QubeRestartScheduled(3, TimeSpan.FromMilliseconds(4250)) { Time = Time, Cause = Cause }),
        Stamp(new QubeFailed("start limit hit: 6 unexpected stops within 60s (intensity 5)") { Time = Time, Cause = Cause }),
        Stamp(new QubeFailedReset { Time = Time, Cause = Cause }),
        Stamp(new QubeNetworkDetached("sys-firewall") { Time = Time, Cause = Cause }),
        Stamp(new QubeNetworkAttached("sys-firewall") { Time = Time, Cause = Cause }),
        Stamp(new QubeDeviceAssigned("usb", "sys-usb:2-1", "auto-attach", Options) { Time = Time, Cause = Cause }),
        Stamp(new QubeDeviceUnassigned("usb", "sys-usb:2-1") { Time = Time, Cause = Cause }),
        Stamp(new QubeDeviceAssignmentChanged("usb", "sys-usb:2-1", "required") { Time = Time, Cause = Cause }),
        Stamp(new QubeDeviceAttached("block", "sys-usb:sda", Options) { Time = Time, Cause = Cause }),
        Stamp(new QubeDeviceDetached("block", "sys-usb:sda", "backend sys-usb stopped") { Time = Time, Cause = Cause }),
        Stamp(new QubeRemoved { Time = Time, Cause = Cause }),
        Stamp(new GlobalPropertySet("default_netvm", "sys-firewall") { Time = Time, Cause = Cause }),
        Stamp(new GlobalPropertyReset("default_netvm") { Time = Time, Cause = Cause }),
        Stamp(new LabelCreated(9, "teal", "0x008080") { Time = Time, Cause = Cause }),
        Stamp(new LabelRemoved("teal") { Time = Time, Cause = Cause }),
        Stamp(new QubesActors.Runtime.Policy.PolicyDecisionRecorded("qubes.Filecopy", "+", "work", "personal", "personal", "personal", "allow", "Ask",
            null, "/etc/qubes/policy.d/90-default.policy", 6, "policy-socket (uid=0 pid=42)", "qrexec: qubes.Filecopy+: work -> personal: allowed to personal")
            { Time = Time, Cause = Cause }),
        Stamp(new QubesActors.Runtime.Persistence.JournalSealed(120, 250, 128, "aa" + Prev[2..],
            [new QubesActors.Runtime.Persistence.SealedHead("qube-6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0", 17, Prev)]) { Time = Time, Cause = Cause }),
    }.ToDictionary(e => e.GetType());
}
