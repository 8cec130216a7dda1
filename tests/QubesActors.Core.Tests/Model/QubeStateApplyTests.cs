using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using Xunit;

namespace QubesActors.Core.Tests.Model;

/// <summary>QubeState.Apply: every event, illegal transitions, restart bookkeeping.</summary>
public class QubeStateApplyTests
{
    private static readonly DateTimeOffset T0 = TestWorld.T0;
    private static readonly EventCause Admin = TestWorld.Dom0;
    private static readonly EventCause Backend = EventCause.Backend("domain died");
    private static readonly ImmutableSortedDictionary<string, string> NoOptions = ImmutableSortedDictionary<string, string>.Empty;

    private static QubeState Halted() => new()
    {
        Uuid = Guid.NewGuid(), Name = "work", Class = QubeClass.AppVM, Qid = 5, Label = "blue",
        Properties = ImmutableSortedDictionary<string, string>.Empty.Add("template", "fedora"),
    };

    private static DateTimeOffset Or(DateTimeOffset? t) => t ?? T0;

    private static QubeState Running(DateTimeOffset? at = null) =>
        Halted().Apply(new QubeStarting("sys-firewall") { Time = Or(at), Cause = Admin }).Apply(new QubeStarted(PowerState.Running) { Time = Or(at), Cause = Admin });

    private static QubeState In(PowerState state) => Halted() with { Power = state };

    [Fact]
    public void FromCreated_copies_the_creation_event_and_starts_halted()
    {
        var props = ImmutableSortedDictionary<string, string>.Empty.Add("template", "fedora").Add("memory", "800");
        var tags = ImmutableSortedSet.Create("created-by-dom0");
        var features = ImmutableSortedDictionary<string, string>.Empty.Add("os", "Linux");
        var created = new QubeCreated(Guid.Parse("6e9c1cd0-6b24-4e8e-9ad3-9d0b1bb9b1b1"), "work", QubeClass.AppVM, 5, "blue", props, tags, features, ["action=drop"], null) { Time = T0, Cause = Admin };
        var q = QubeState.FromCreated(created);
        Assert.Equal((created.Uuid, "work", QubeClass.AppVM, 5, "blue", PowerState.Halted), (q.Uuid, q.Name, q.Class, q.Qid, q.Label, q.Power));
        Assert.Equal(props, q.Properties);
        Assert.Equal(tags, q.Tags);
        Assert.Equal(features, q.Features);
        Assert.Equal(["action=drop"], q.Firewall!.Value.ToArray());
        Assert.Throws<InvalidOperationException>(() => q.Apply(created));
    }

    [Fact]
    public void An_AdminVM_is_created_running()
    {
        var created = new QubeCreated(Guid.Empty, "dom0", QubeClass.AdminVM, 0, "black",
            ImmutableSortedDictionary<string, string>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<string, string>.Empty, null, null) { Time = T0, Cause = Admin };
        Assert.Equal(PowerState.Running, QubeState.FromCreated(created).Power);
    }

    [Fact]
    public void Data_events_change_only_their_data()
    {
        var q = Halted()
            .Apply(new QubePropertySet("memory", "800") { Time = T0, Cause = Admin })
            .Apply(new QubePropertySet("label", "green") { Time = T0, Cause = Admin })
            .Apply(new QubeFeatureSet("os", "Linux") { Time = T0, Cause = Admin })
            .Apply(new QubeTagAdded("t1") { Time = T0, Cause = Admin })
            .Apply(new QubeTagAdded("t2") { Time = T0, Cause = Admin })
            .Apply(new QubeNotesSet("hello") { Time = T0, Cause = Admin })
            .Apply(new QubeFirewallSet(ImmutableArray.Create("action=drop")) { Time = T0, Cause = Admin });
        Assert.Equal("800", q.Property("memory"));
        Assert.Equal("green", q.Label);
        Assert.False(q.Properties.ContainsKey("label"));
        Assert.Equal("Linux", q.Features["os"]);
        Assert.Equal(["t1", "t2"], q.Tags);
        Assert.Equal("hello", q.Notes);
        Assert.Equal(["action=drop"], q.Firewall!.Value.ToArray());
        q = q.Apply(new QubePropertyReset("memory") { Time = T0, Cause = Admin })
            .Apply(new QubeFeatureRemoved("os") { Time = T0, Cause = Admin })
            .Apply(new QubeTagRemoved("t1") { Time = T0, Cause = Admin })
            .Apply(new QubeFirewallSet(null) { Time = T0, Cause = Admin });
        Assert.Null(q.Property("memory"));
        Assert.Empty(q.Features);
        Assert.Equal(["t2"], q.Tags);
        Assert.Null(q.Firewall);
        Assert.Equal(PowerState.Halted, q.Power);
    }

    [Fact]
    public void Start_goes_through_transient_to_the_started_state()
    {
        var starting = Halted().Apply(new QubeStarting("sys-firewall") { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Transient, starting.Power);
        Assert.Equal("sys-firewall", starting.ConnectedNetVm);
        var t1 = T0 + TimeSpan.FromSeconds(3);
        var running = starting.Apply(new QubeStarted(PowerState.Running) { Time = t1, Cause = Admin });
        Assert.Equal(PowerState.Running, running.Power);
        Assert.Equal(t1, running.StartTime);
        Assert.True(running.Power.IsActive());
    }

    [Fact]
    public void A_started_event_may_follow_halted_directly()
    {
        Assert.Equal(PowerState.Running, Halted().Apply(new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin }).Power);
    }

    [Fact]
    public void A_failed_start_returns_to_halted_and_forgets_connections()
    {
        var q = Halted().Apply(new QubeStarting("sys-firewall") { Time = T0, Cause = Admin })
            .Apply(new QubeDeviceAttached("usb", "sys-usb:2-1", NoOptions) { Time = T0, Cause = Admin })
            .Apply(new QubeStartFailed("no memory") { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Halted, q.Power);
        Assert.Null(q.ConnectedNetVm);
        Assert.Null(q.StartTime);
        Assert.Empty(q.Attachments);
        Assert.Empty(q.RecentCrashes);
    }

    [Fact]
    public void A_failed_supervisor_restart_counts_against_the_restart_intensity()
    {
        var q = Halted().Apply(new QubeStartFailed("no memory") { Time = T0, Cause = EventCause.Supervisor("restart 1") });
        Assert.Equal([T0], q.RecentCrashes);
    }

    [Fact]
    public void Shutdown_goes_through_halting_to_halted()
    {
        var q = Running().Apply(new QubeDeviceAttached("usb", "sys-usb:2-1", NoOptions) { Time = T0, Cause = Admin });
        var halting = q.Apply(new QubeShuttingDown(false) { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Halting, halting.Power);
        var stopped = halting.Apply(new QubeStopped(StopKind.Shutdown, null) { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Halted, stopped.Power);
        Assert.Null(stopped.StartTime);
        Assert.Null(stopped.ConnectedNetVm);
        Assert.Empty(stopped.Attachments);
        Assert.Equal(StopKind.Shutdown, stopped.LastStop);
        Assert.Empty(stopped.RecentCrashes);
    }

    [Fact]
    public void A_new_start_clears_the_last_stop_kind()
    {
        var q = Running().Apply(new QubeStopped(StopKind.Killed, "kill") { Time = T0, Cause = Admin }).Apply(new QubeStarting(null) { Time = T0, Cause = Admin });
        Assert.Null(q.LastStop);
        Assert.Null(q.ConnectedNetVm);
    }

    [Theory]
    [InlineData(PowerState.Running)]
    [InlineData(PowerState.Paused)]
    [InlineData(PowerState.Suspended)]
    [InlineData(PowerState.Transient)]
    public void Kill_and_crash_are_possible_from_any_active_state(PowerState state)
    {
        Assert.Equal(PowerState.Halted, In(state).Apply(new QubeStopped(StopKind.Killed, null) { Time = T0, Cause = Admin }).Power);
        Assert.Equal(PowerState.Halted, In(state).Apply(new QubeStopped(StopKind.Crashed, null) { Time = T0, Cause = Admin }).Power);
    }

    [Fact]
    public void Pause_unpause_suspend_resume()
    {
        var paused = Running().Apply(new QubePaused() { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Paused, paused.Power);
        Assert.True(paused.Power.IsActive());
        Assert.Equal(PowerState.Running, paused.Apply(new QubeUnpaused() { Time = T0, Cause = Admin }).Power);
        var suspended = Running().Apply(new QubeSuspended() { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Suspended, suspended.Power);
        Assert.Equal(PowerState.Running, suspended.Apply(new QubeResumed() { Time = T0, Cause = Admin }).Power);
        // Resume of a paused qube behaves as unpause; unpause also wakes a suspended one.
        Assert.Equal(PowerState.Running, paused.Apply(new QubeResumed() { Time = T0, Cause = Admin }).Power);
        Assert.Equal(PowerState.Running, suspended.Apply(new QubeUnpaused() { Time = T0, Cause = Admin }).Power);
        Assert.Equal(PowerState.Suspended, paused.Apply(new QubeSuspended() { Time = T0, Cause = Admin }).Power);
    }

    public static TheoryData<PowerState, string> IllegalTransitions => new()
    {
        { PowerState.Running, nameof(QubeStarting) },
        { PowerState.Paused, nameof(QubeStarting) },
        { PowerState.Transient, nameof(QubeStarting) },
        { PowerState.Running, nameof(QubeStarted) },
        { PowerState.Paused, nameof(QubeStarted) },
        { PowerState.Halted, nameof(QubeShuttingDown) },
        { PowerState.Halted, nameof(QubePaused) },
        { PowerState.Halted, nameof(QubeSuspended) },
        { PowerState.Halted, nameof(QubeUnpaused) },
        { PowerState.Running, nameof(QubeUnpaused) },
        { PowerState.Halted, nameof(QubeResumed) },
        { PowerState.Running, nameof(QubeResumed) },
        { PowerState.Running, nameof(QubeRemoved) },
        { PowerState.Paused, nameof(QubeRemoved) },
        { PowerState.Halting, nameof(QubeRemoved) },
    };

    private static QubeEvent EventNamed(string name) => name switch
    {
        nameof(QubeStarting) => new QubeStarting(null) { Time = T0, Cause = Admin },
        nameof(QubeStarted) => new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin },
        nameof(QubeShuttingDown) => new QubeShuttingDown(false) { Time = T0, Cause = Admin },
        nameof(QubePaused) => new QubePaused() { Time = T0, Cause = Admin },
        nameof(QubeSuspended) => new QubeSuspended() { Time = T0, Cause = Admin },
        nameof(QubeUnpaused) => new QubeUnpaused() { Time = T0, Cause = Admin },
        nameof(QubeResumed) => new QubeResumed() { Time = T0, Cause = Admin },
        nameof(QubeRemoved) => new QubeRemoved() { Time = T0, Cause = Admin },
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(IllegalTransitions))]
    public void Illegal_transitions_throw(PowerState from, string eventName)
    {
        var e = Assert.Throws<InvalidOperationException>(() => In(from).Apply(EventNamed(eventName)));
        Assert.Equal($"work: illegal transition {eventName} from {from}", e.Message);
    }

    [Fact]
    public void Removal_of_a_halted_qube_marks_it_removed()
    {
        var q = Halted().Apply(new QubeRemoved() { Time = T0, Cause = Admin });
        Assert.True(q.Removed);
    }

    [Fact]
    public void Adoption_takes_the_backend_state_and_keeps_an_existing_start_time()
    {
        var adopted = Halted().Apply(new QubeAdopted(PowerState.Paused) { Time = T0, Cause = Admin });
        Assert.Equal(PowerState.Paused, adopted.Power);
        Assert.Equal(T0, adopted.StartTime);
        var started = Running(T0 - TimeSpan.FromHours(1)).Apply(new QubeAdopted(PowerState.Running) { Time = T0, Cause = Admin });
        Assert.Equal(T0 - TimeSpan.FromHours(1), started.StartTime);
    }

    [Fact]
    public void Network_attach_and_detach_track_the_plumbed_netvm()
    {
        var q = Running().Apply(new QubeNetworkDetached("sys-firewall") { Time = T0, Cause = Admin });
        Assert.Null(q.ConnectedNetVm);
        Assert.Equal("sys-net", q.Apply(new QubeNetworkAttached("sys-net") { Time = T0, Cause = Admin }).ConnectedNetVm);
    }

    [Fact]
    public void Device_assignments_and_attachments()
    {
        var opts = ImmutableSortedDictionary<string, string>.Empty.Add("no-strict-reset", "True");
        var q = Halted()
            .Apply(new QubeDeviceAssigned("pci", "dom0:00_14.0", "required", opts) { Time = T0, Cause = Admin })
            .Apply(new QubeDeviceAssignmentChanged("pci", "dom0:00_14.0", "auto-attach") { Time = T0, Cause = Admin });
        Assert.Equal(new DeviceBinding("pci", "dom0:00_14.0", "auto-attach", opts), q.Assignments["pci:dom0:00_14.0"]);
        Assert.Throws<InvalidOperationException>(() => q.Apply(new QubeDeviceAssignmentChanged("pci", "dom0:00_15.0", "required") { Time = T0, Cause = Admin }));
        Assert.Empty(q.Apply(new QubeDeviceUnassigned("pci", "dom0:00_14.0") { Time = T0, Cause = Admin }).Assignments);
        var attached = q.Apply(new QubeDeviceAttached("usb", "sys-usb:2-1", NoOptions) { Time = T0, Cause = Admin });
        Assert.Equal("manual", attached.Attachments["usb:sys-usb:2-1"].Mode);
        Assert.Empty(attached.Apply(new QubeDeviceDetached("usb", "sys-usb:2-1", "unplugged") { Time = T0, Cause = Admin }).Attachments);
    }

    [Fact]
    public void Crashes_are_remembered_for_at_most_the_maximum_window()
    {
        var q = Halted();
        var times = new[] { T0, T0 + TimeSpan.FromMinutes(30), T0 + TimeSpan.FromMinutes(70) };
        foreach (var t in times)
            q = q.Apply(new QubeStarted(PowerState.Running) { Time = t, Cause = Admin }).Apply(new QubeStopped(StopKind.Crashed, "oops") { Time = t + TimeSpan.FromSeconds(1), Cause = Backend });
        Assert.Equal(times.Skip(1).Select(t => t + TimeSpan.FromSeconds(1)), q.RecentCrashes);
        Assert.Equal(StopKind.Crashed, q.LastStop);
    }

    [Fact]
    public void An_asked_shutdown_or_kill_is_not_an_unexpected_stop()
    {
        var q = Running().Apply(new QubeStopped(StopKind.Shutdown, null) { Time = T0, Cause = Admin });
        q = q.Apply(new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin }).Apply(new QubeStopped(StopKind.Killed, null) { Time = T0, Cause = Admin });
        Assert.Empty(q.RecentCrashes);
    }

    [Fact]
    public void A_shutdown_the_qube_did_on_its_own_is_an_unexpected_stop()
    {
        // The backend reported the domain gone without being asked: a permanent qube restarts after it, so it counts.
        var q = Running().Apply(new QubeStopped(StopKind.Shutdown, "domain died") { Time = T0 + TimeSpan.FromSeconds(5), Cause = Backend });
        Assert.Equal([T0 + TimeSpan.FromSeconds(5)], q.RecentCrashes);
    }

    [Fact]
    public void Consecutive_restarts_reset_after_a_run_of_ten_minutes()
    {
        var q = Halted().Apply(new QubeRestartScheduled(3, TimeSpan.FromSeconds(4)) { Time = T0, Cause = Admin });
        Assert.Equal(3, q.ConsecutiveRestarts);
        var shortRun = q.Apply(new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin })
            .Apply(new QubeStopped(StopKind.Crashed, null) { Time = T0 + RestartPolicy.QuietPeriod - TimeSpan.FromSeconds(1), Cause = Backend });
        Assert.Equal(3, shortRun.ConsecutiveRestarts);
        var longRun = q.Apply(new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin })
            .Apply(new QubeStopped(StopKind.Crashed, null) { Time = T0 + RestartPolicy.QuietPeriod, Cause = Backend });
        Assert.Equal(0, longRun.ConsecutiveRestarts);
        Assert.Equal(TimeSpan.FromMinutes(10), RestartPolicy.QuietPeriod);
    }

    [Fact]
    public void Failed_state_is_set_and_reset_with_the_bookkeeping()
    {
        var q = Running().Apply(new QubeStopped(StopKind.Crashed, null) { Time = T0, Cause = Backend })
            .Apply(new QubeRestartScheduled(2, TimeSpan.FromSeconds(2)) { Time = T0, Cause = Admin })
            .Apply(new QubeFailed("start limit hit") { Time = T0, Cause = Admin });
        Assert.True(q.Failed);
        Assert.Equal("start limit hit", q.FailedReason);
        var reset = q.Apply(new QubeFailedReset() { Time = T0, Cause = Admin });
        Assert.False(reset.Failed);
        Assert.Null(reset.FailedReason);
        Assert.Empty(reset.RecentCrashes);
        Assert.Equal(0, reset.ConsecutiveRestarts);
    }

    [Fact]
    public void Collection_level_apply_adds_updates_and_drops_qubes()
    {
        var w = TestWorld.Installed();
        var before = w.State.Qubes.Count;
        w.Create(QubeClass.StandaloneVM, "sa");
        Assert.Equal(before + 1, w.State.Qubes.Count);
        w.Set("sa", "memory", "900");
        Assert.Equal("900", w["sa"].Property("memory"));
        w.Remove("sa");
        Assert.Equal(before, w.State.Qubes.Count);
        Assert.Throws<InvalidOperationException>(() => w.State.Apply(new LabelRemovedLike { Time = T0, Cause = Admin }));
    }

    private sealed record LabelRemovedLike : CollectionEvent;
}
