using System.Collections.Immutable;
using QubesActors.Core.Model;

namespace QubesActors.Core.Events;

/// <summary>Who or what caused a change of state (DESIGN.md: every event records its cause).</summary>
public sealed record EventCause(string Kind, string? Caller = null, string? Detail = null)
{
    public const string AdminKind = "admin";
    public const string SupervisorKind = "supervisor";
    public const string BackendKind = "backend";
    public const string PolicyKind = "policy";
    public const string SystemKind = "system";

    public static EventCause Admin(string caller, string? method = null) => new(AdminKind, caller, method);
    public static EventCause Supervisor(string detail) => new(SupervisorKind, null, detail);
    public static EventCause Backend(string detail) => new(BackendKind, null, detail);
    public static EventCause System(string detail) => new(SystemKind, null, detail);

    public override string ToString() => Caller is null ? $"{Kind}: {Detail}" : $"{Kind} {Caller}{(Detail is null ? "" : $" ({Detail})")}";
}

/// <summary>
/// A persisted fact. Every event carries its time, its cause and the hash of the previous event of its stream
/// (the tamper-evident chain); the journal manifest names the concrete type and never changes.
/// </summary>
public abstract record DomainEvent
{
    public required DateTimeOffset Time { get; init; }
    public required EventCause Cause { get; init; }
    /// <summary>Hex SHA-256 of the previous event of the same stream; empty for the first.</summary>
    public string PrevHash { get; init; } = "";
}

/// <summary>An event of one qube's stream (<c>qube-{uuid}</c>).</summary>
public abstract record QubeEvent : DomainEvent;

/// <summary>An event of the collection's own stream (global properties, labels).</summary>
public abstract record CollectionEvent : DomainEvent;

public sealed record QubeCreated(
    Guid Uuid,
    string Name,
    QubeClass Class,
    int Qid,
    string Label,
    ImmutableSortedDictionary<string, string> Properties,
    ImmutableSortedSet<string> Tags,
    ImmutableSortedDictionary<string, string> Features,
    ImmutableArray<string>? Firewall,
    int? DispId) : QubeEvent;

public sealed record QubePropertySet(string Property, string Value) : QubeEvent;
public sealed record QubePropertyReset(string Property) : QubeEvent;
public sealed record QubeFeatureSet(string Feature, string Value) : QubeEvent;
public sealed record QubeFeatureRemoved(string Feature) : QubeEvent;
public sealed record QubeTagAdded(string Tag) : QubeEvent;
public sealed record QubeTagRemoved(string Tag) : QubeEvent;
public sealed record QubeNotesSet(string Notes) : QubeEvent;

/// <summary>The whole firewall list in the Admin API text form; null lines = back to the default accept-all.</summary>
public sealed record QubeFirewallSet(ImmutableArray<string>? Rules) : QubeEvent;

/// <summary>No longer written (Transient is volatile, see docs/persistence.md); kept so that older journals replay.</summary>
public sealed record QubeStarting(string? NetVm) : QubeEvent;
/// <summary>The domain is up; <paramref name="NetVm"/> is the netvm it was plumbed to at start (absent in older events).</summary>
public sealed record QubeStarted(PowerState State, string? NetVm = null) : QubeEvent;
public sealed record QubeStartFailed(string Reason) : QubeEvent;
/// <summary>No longer written (Halting is volatile, see docs/persistence.md); kept so that older journals replay.</summary>
public sealed record QubeShuttingDown(bool Force) : QubeEvent;
public sealed record QubeStopped(StopKind Kind, string? Reason) : QubeEvent;
public sealed record QubePaused : QubeEvent;
public sealed record QubeUnpaused : QubeEvent;
public sealed record QubeSuspended : QubeEvent;
public sealed record QubeResumed : QubeEvent;

/// <summary>The daemon found the domain running after a restart of its own and took it over without touching it.</summary>
public sealed record QubeAdopted(PowerState State) : QubeEvent;

/// <summary>The supervisor decided to restart a stopped qube after a delay.</summary>
public sealed record QubeRestartScheduled(int Attempt, TimeSpan Delay) : QubeEvent;

/// <summary>Start limit hit: the qube stays down until reset-failed.</summary>
public sealed record QubeFailed(string Reason) : QubeEvent;
public sealed record QubeFailedReset : QubeEvent;

public sealed record QubeNetworkDetached(string NetVm) : QubeEvent;
public sealed record QubeNetworkAttached(string NetVm) : QubeEvent;

public sealed record QubeDeviceAssigned(string DeviceClass, string Device, string Mode, ImmutableSortedDictionary<string, string> Options) : QubeEvent;
public sealed record QubeDeviceUnassigned(string DeviceClass, string Device) : QubeEvent;
public sealed record QubeDeviceAssignmentChanged(string DeviceClass, string Device, string Mode) : QubeEvent;
public sealed record QubeDeviceAttached(string DeviceClass, string Device, ImmutableSortedDictionary<string, string> Options) : QubeEvent;
public sealed record QubeDeviceDetached(string DeviceClass, string Device, string Reason) : QubeEvent;

public sealed record QubeRemoved : QubeEvent;

public sealed record GlobalPropertySet(string Property, string Value) : CollectionEvent;
public sealed record GlobalPropertyReset(string Property) : CollectionEvent;
public sealed record LabelCreated(int Index, string Name, string Color) : CollectionEvent;
public sealed record LabelRemoved(string Name) : CollectionEvent;
