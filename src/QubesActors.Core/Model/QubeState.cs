using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Rules;

namespace QubesActors.Core.Model;

/// <summary>A device bound to a qube: an assignment (persistent, with a mode) or a live attachment.</summary>
public sealed record DeviceBinding(string DeviceClass, string Device, string Mode, ImmutableSortedDictionary<string, string> Options)
{
    public string Key => $"{DeviceClass}:{Device}";
}

/// <summary>
/// One qube as its stream defines it. Immutable: <see cref="Apply"/> returns the next state and refuses
/// transitions that cannot happen, so replay and live operation run the same code.
/// </summary>
public sealed record QubeState
{
    public required Guid Uuid { get; init; }
    public required string Name { get; init; }
    public required QubeClass Class { get; init; }
    public required int Qid { get; init; }
    public int? DispId { get; init; }
    public required string Label { get; init; }
    /// <summary>Explicitly set properties (Admin API text values); anything absent follows its default.</summary>
    public ImmutableSortedDictionary<string, string> Properties { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    public ImmutableSortedSet<string> Tags { get; init; } = ImmutableSortedSet<string>.Empty;
    public ImmutableSortedDictionary<string, string> Features { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    /// <summary>Firewall rules in the API text form; null = no custom rules (accept all).</summary>
    public ImmutableArray<string>? Firewall { get; init; }
    public string Notes { get; init; } = "";
    public ImmutableSortedDictionary<string, DeviceBinding> Assignments { get; init; } = ImmutableSortedDictionary<string, DeviceBinding>.Empty;
    public ImmutableSortedDictionary<string, DeviceBinding> Attachments { get; init; } = ImmutableSortedDictionary<string, DeviceBinding>.Empty;

    public PowerState Power { get; init; } = PowerState.Halted;
    public DateTimeOffset? StartTime { get; init; }
    /// <summary>The netvm the running domain is plumbed to (null when none or halted).</summary>
    public string? ConnectedNetVm { get; init; }
    public bool Failed { get; init; }
    public string? FailedReason { get; init; }
    /// <summary>Times of unasked stops (crashes, or stops of permanent qubes) still inside the restart window.</summary>
    public ImmutableList<DateTimeOffset> RecentCrashes { get; init; } = ImmutableList<DateTimeOffset>.Empty;
    /// <summary>Restarts the supervisor scheduled since the last quiet period (drives the backoff).</summary>
    public int ConsecutiveRestarts { get; init; }
    public StopKind? LastStop { get; init; }
    public bool Removed { get; init; }

    public static QubeState FromCreated(QubeCreated e) => new()
    {
        Uuid = e.Uuid,
        Name = e.Name,
        Class = e.Class,
        Qid = e.Qid,
        DispId = e.DispId,
        Label = e.Label,
        Properties = e.Properties,
        Tags = e.Tags,
        Features = e.Features,
        Firewall = e.Firewall,
        Power = e.Class == QubeClass.AdminVM ? PowerState.Running : PowerState.Halted,
    };

    public string? Property(string name) => Properties.TryGetValue(name, out var v) ? v : null;

    public QubeState Apply(QubeEvent e) => e switch
    {
        QubeCreated => throw new InvalidOperationException($"{Name}: created twice"),
        QubePropertySet p => p.Property == "label" ? this with { Label = p.Value } : this with { Properties = Properties.SetItem(p.Property, p.Value) },
        QubePropertyReset p => this with { Properties = Properties.Remove(p.Property) },
        QubeFeatureSet f => this with { Features = Features.SetItem(f.Feature, f.Value) },
        QubeFeatureRemoved f => this with { Features = Features.Remove(f.Feature) },
        QubeTagAdded t => this with { Tags = Tags.Add(t.Tag) },
        QubeTagRemoved t => this with { Tags = Tags.Remove(t.Tag) },
        QubeNotesSet n => this with { Notes = n.Notes },
        QubeFirewallSet f => this with { Firewall = f.Rules },
        QubeStarting s => Require(Power == PowerState.Halted, e) with { Power = PowerState.Transient, ConnectedNetVm = s.NetVm, LastStop = null },
        QubeStarted s => Require(Power is PowerState.Transient or PowerState.Halted, e) with
        {
            Power = s.State, StartTime = e.Time, LastStop = null, ConnectedNetVm = s.NetVm ?? (Power == PowerState.Transient ? ConnectedNetVm : null),
        },
        QubeStartFailed => this with
        {
            Power = PowerState.Halted, ConnectedNetVm = null, StartTime = null, Attachments = Attachments.Clear(),
            // A supervisor restart that fails to start counts against the restart intensity like a crash.
            RecentCrashes = e.Cause.Kind == EventCause.SupervisorKind ? RecentCrashes.Add(e.Time).RemoveAll(t => e.Time - t > RestartPolicy.MaxWindow) : RecentCrashes,
        },
        QubeShuttingDown => Require(Power.IsActive(), e) with { Power = PowerState.Halting },
        QubeStopped s => Stopped(s),
        QubePaused => Require(Power.IsActive(), e) with { Power = PowerState.Paused },
        QubeUnpaused => Require(Power is PowerState.Paused or PowerState.Suspended, e) with { Power = PowerState.Running },
        QubeSuspended => Require(Power.IsActive(), e) with { Power = PowerState.Suspended },
        QubeResumed => Require(Power is PowerState.Suspended or PowerState.Paused, e) with { Power = PowerState.Running },
        QubeAdopted a => this with { Power = a.State, StartTime = StartTime ?? e.Time },
        QubeRestartScheduled r => this with { ConsecutiveRestarts = r.Attempt },
        QubeFailed f => this with { Failed = true, FailedReason = f.Reason },
        QubeFailedReset => this with { Failed = false, FailedReason = null, RecentCrashes = RecentCrashes.Clear(), ConsecutiveRestarts = 0 },
        QubeNetworkDetached => this with { ConnectedNetVm = null },
        QubeNetworkAttached a => this with { ConnectedNetVm = a.NetVm },
        QubeDeviceAssigned d => this with { Assignments = Assignments.SetItem($"{d.DeviceClass}:{d.Device}", new DeviceBinding(d.DeviceClass, d.Device, d.Mode, d.Options)) },
        QubeDeviceUnassigned d => this with { Assignments = Assignments.Remove($"{d.DeviceClass}:{d.Device}") },
        QubeDeviceAssignmentChanged d => Assignments.TryGetValue($"{d.DeviceClass}:{d.Device}", out var a)
            ? this with { Assignments = Assignments.SetItem(a.Key, a with { Mode = d.Mode }) }
            : throw new InvalidOperationException($"{Name}: assignment change of unknown device {d.Device}"),
        QubeDeviceAttached d => this with { Attachments = Attachments.SetItem($"{d.DeviceClass}:{d.Device}", new DeviceBinding(d.DeviceClass, d.Device, "manual", d.Options)) },
        QubeDeviceDetached d => this with { Attachments = Attachments.Remove($"{d.DeviceClass}:{d.Device}") },
        QubeRemoved => Require(!Power.IsActive(), e) with { Removed = true },
        _ => throw new InvalidOperationException($"unknown event {e.GetType().Name}"),
    };

    private QubeState Stopped(QubeStopped s)
    {
        // Unexpected stops count against the restart intensity: crashes, and any stop the backend reported without
        // being asked (a permanent qube is restarted after those too, so they must be bounded the same way).
        var unexpected = s.Kind == StopKind.Crashed || s.Cause.Kind == EventCause.BackendKind;
        // A run that lasted past the quiet period resets the backoff (DESIGN.md: reset after 10 min running).
        var quiet = StartTime is { } started && s.Time - started >= RestartPolicy.QuietPeriod;
        return this with
        {
            Power = PowerState.Halted,
            StartTime = null,
            ConnectedNetVm = null,
            LastStop = s.Kind,
            Attachments = Attachments.Clear(),
            RecentCrashes = unexpected ? RecentCrashes.Add(s.Time).RemoveAll(t => s.Time - t > RestartPolicy.MaxWindow) : RecentCrashes,
            ConsecutiveRestarts = quiet ? 0 : ConsecutiveRestarts,
        };
    }

    private QubeState Require(bool legal, QubeEvent e) =>
        legal ? this : throw new InvalidOperationException($"{Name}: illegal transition {e.GetType().Name} from {Power}");
}
