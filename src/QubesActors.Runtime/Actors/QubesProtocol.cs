using System.Collections.Immutable;
using Akka.Actor;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Runtime.Backend;

namespace QubesActors.Runtime.Actors;

/// <summary>
/// Who made a call: the qube name the Admin API sees, the local process when known (SO_PEERCRED), and the
/// Admin API method that carried the command (the audit record names the call, not the command it became).
/// </summary>
public sealed record Caller(string Name, int? Uid = null, int? Pid = null, string? Method = null)
{
    public static Caller Dom0 { get; } = new(CollectionState.AdminName);
    public string Describe() => Uid is null ? Name : $"{Name} (uid={Uid} pid={Pid})";
    public EventCause Cause(string method) => EventCause.Admin(Describe(), Method ?? method);
}

/// <summary>Messages to and from <see cref="QubesSupervisor"/>, the entry point of the collection.</summary>
public static class QubesProtocol
{
    /// <summary>Every command is answered with exactly one <see cref="CommandResult"/>.</summary>
    public interface IQubesCommand
    {
        Caller Caller { get; }
    }

    public abstract record CommandResult;
    public sealed record Done(string Output = "") : CommandResult;
    public sealed record Refused(QubesError Error) : CommandResult;

    public sealed record CreateQube(QubeClass Class, string Name, string Label, string? Template, ImmutableDictionary<string, string> Properties, Caller Caller) : IQubesCommand;
    /// <summary>Base "dom0" means the caller's default_dispvm.</summary>
    public sealed record CreateDisposable(string Base, Caller Caller) : IQubesCommand;
    public sealed record RemoveQube(string Name, Caller Caller) : IQubesCommand;
    public sealed record SetProperty(string Name, string Property, string Value, Caller Caller) : IQubesCommand;
    public sealed record ResetProperty(string Name, string Property, Caller Caller) : IQubesCommand;
    public sealed record SetGlobalProperty(string Property, string Value, Caller Caller) : IQubesCommand;
    public sealed record ResetGlobalProperty(string Property, Caller Caller) : IQubesCommand;
    /// <summary><paramref name="Internal"/>: qubesd itself (e.g. the list of preloaded disposables), which may set the features the Admin API may not.</summary>
    public sealed record SetFeature(string Name, string Feature, string Value, Caller Caller, bool Internal = false) : IQubesCommand;
    public sealed record RemoveFeature(string Name, string Feature, Caller Caller) : IQubesCommand;
    public sealed record AddTag(string Name, string Tag, Caller Caller) : IQubesCommand;
    public sealed record RemoveTag(string Name, string Tag, Caller Caller) : IQubesCommand;
    public sealed record SetNotes(string Name, string Notes, Caller Caller) : IQubesCommand;
    public sealed record SetFirewall(string Name, string Rules, Caller Caller) : IQubesCommand;
    public sealed record ReloadFirewall(string Name, Caller Caller) : IQubesCommand;
    public sealed record CreateLabel(string Label, string Color, Caller Caller) : IQubesCommand;
    public sealed record RemoveLabel(string Label, Caller Caller) : IQubesCommand;

    public sealed record AssignDevice(string Name, string DeviceClass, string Device, string Mode, ImmutableSortedDictionary<string, string> Options, Caller Caller) : IQubesCommand;
    public sealed record UnassignDevice(string Name, string DeviceClass, string Device, Caller Caller) : IQubesCommand;
    public sealed record SetAssignmentMode(string Name, string DeviceClass, string Device, string Mode, Caller Caller) : IQubesCommand;
    public sealed record AttachDevice(string Name, string DeviceClass, string Device, ImmutableSortedDictionary<string, string> Options, Caller Caller) : IQubesCommand;
    public sealed record DetachDevice(string Name, string DeviceClass, string Device, Caller Caller) : IQubesCommand;

    public sealed record StartQube(string Name, Caller Caller) : IQubesCommand;
    public sealed record ShutdownQube(string Name, bool Force, bool Wait, Caller Caller) : IQubesCommand;
    public sealed record KillQube(string Name, Caller Caller) : IQubesCommand;
    public sealed record PauseQube(string Name, Caller Caller) : IQubesCommand;
    /// <param name="AcknowledgeWhenThawed">
    /// Done as soon as the domain runs again, before its record is journaled (the record follows; were its write to
    /// fail, the qube's actor restarts and takes the domain as the backend reports it). For a preloaded disposable
    /// handed to a qrexec call: the caller waits on the thaw, not on the journal's disk.
    /// </param>
    public sealed record UnpauseQube(string Name, Caller Caller, bool AcknowledgeWhenThawed = false) : IQubesCommand;
    public sealed record SuspendQube(string Name, Caller Caller) : IQubesCommand;
    public sealed record ResumeQube(string Name, Caller Caller) : IQubesCommand;
    public sealed record ResetFailed(string Name, Caller Caller) : IQubesCommand;
    /// <summary>Ordered teardown of every qube but dom0: clients first, then firewalls, then net.</summary>
    public sealed record ShutdownAll(bool Force, Caller Caller) : IQubesCommand;

    /// <summary>Creates the layout on an empty journal (first start).</summary>
    public sealed record InitializeLayout(LayoutSpec Layout) : IQubesCommand
    {
        public Caller Caller => Caller.Dom0;
    }

    /// <summary>A consistent copy of the collection, answered from the supervisor's view without asking any qube.</summary>
    public sealed record GetCollection;
    public sealed record CollectionSnapshot(CollectionState State, ImmutableSortedDictionary<string, string> Quarantined,
        ImmutableDictionary<string, ImmutableArray<BackendDevice>> AvailableDevices, bool Recovered);

    /// <summary>Answered once recovery and reconciliation are done.</summary>
    /// <summary>Asks the qube's own actor to answer (benchmarks, readiness checks).</summary>
    public sealed record PingQube(string Name, Caller Caller) : IQubesCommand;

    public sealed record WaitUntilReady;
    /// <summary><paramref name="JournalWasEmpty"/>: a first start (the only case in which the default layout is created).</summary>
    public sealed record Ready(TimeSpan RecoveryTime, int Qubes, int Quarantined, bool JournalWasEmpty = false);
}

/// <summary>The qubes a first start creates (config/layout.default.json).</summary>
public sealed record LayoutSpec(
    ImmutableArray<LayoutQube> Qubes,
    ImmutableDictionary<string, string> Globals);

public sealed record LayoutQube(
    string Name,
    QubeClass Class,
    string Label,
    string? Template,
    ImmutableDictionary<string, string> Properties,
    ImmutableDictionary<string, string> Features,
    ImmutableArray<string> Tags,
    ImmutableArray<LayoutDevice> Devices);

public sealed record LayoutDevice(string DeviceClass, string Device, string Mode, ImmutableDictionary<string, string> Options);

/// <summary>A §2.1 event as admin.Events delivers it: subject qube ("" for the system), name, keyword arguments.</summary>
public sealed record QubesEventNotice(string Subject, string Event, ImmutableArray<KeyValuePair<string, string>> Arguments)
{
    public static QubesEventNotice Of(string subject, string name, params (string Key, string Value)[] args) =>
        new(subject, name, [.. args.Select(a => KeyValuePair.Create(a.Key, a.Value))]);

    public override string ToString() => Arguments.IsEmpty ? $"{Subject}: {Event}" : $"{Subject}: {Event}({string.Join(", ", Arguments.Select(a => $"{a.Key}={a.Value}"))})";
}

/// <summary>Internal messages between the supervisors and the qube actors.</summary>
internal static class QubeProtocol
{
    /// <summary>Spawn (or re-spawn) the actor of a recovered or created qube.</summary>
    public sealed record SpawnQube(QubeState State, long SequenceNr, string LastHash);
    public sealed record StopQubeActor(string Name);
    public sealed record ToQube(string Name, object Message);

    /// <summary>Persist events the supervisor decided, apply them, answer the caller.</summary>
    /// <summary>
    /// Persist events the supervisor decided, apply them, answer. With a <paramref name="MutationId"/> the answer is a
    /// <see cref="MutationDone"/> to <paramref name="ReplyTo"/> (the supervisor, which tracks the change in flight).
    /// </summary>
    public sealed record PersistEvents(ImmutableArray<QubeEvent> Events, IActorRef ReplyTo, string Output = "", NetworkChange? Network = null, long MutationId = 0);

    public sealed record MutationDone(long MutationId, QubesProtocol.CommandResult Result);

    /// <summary>After a live netvm change of a running qube: move its link.</summary>
    public sealed record NetworkChange(string? NewNetVm);

    public sealed record Start(DomainSpec Spec, string? NetVm, QubesError? StartRefusal, EventCause Cause, IActorRef ReplyTo);
    public sealed record Shutdown(bool Force, bool Wait, TimeSpan Timeout, EventCause Cause, IActorRef ReplyTo);
    public sealed record Kill(EventCause Cause, IActorRef ReplyTo);
    public sealed record Pause(EventCause Cause, IActorRef ReplyTo);
    public sealed record Unpause(EventCause Cause, IActorRef ReplyTo, bool AcknowledgeWhenThawed = false);
    public sealed record Suspend(EventCause Cause, IActorRef ReplyTo);
    public sealed record Resume(EventCause Cause, IActorRef ReplyTo);
    public sealed record DomainDied(bool Crashed, string Reason);
    /// <summary>Answered by the qube actor itself (not the supervisor's view): proves the actor is up.</summary>
    public sealed record Ping;
    /// <summary>Test hook: makes the qube actor throw, as a bug would (Akka restarts it; the domain is not touched).</summary>
    public sealed record FailForTest(string Reason);
    public sealed record AttachDeviceNow(BackendDevice Device, string Mode, ImmutableSortedDictionary<string, string> Options, EventCause Cause, IActorRef? ReplyTo);
    public sealed record DetachDeviceNow(string DeviceClass, BackendDevice Device, string Reason, EventCause Cause, IActorRef? ReplyTo);
    /// <summary>Backend reconciliation after a daemon restart: what the backend reports for this domain.</summary>
    public sealed record Reconcile(PowerState? BackendState);
    /// <summary>A qube's answer to <see cref="Reconcile"/>, once what it found is persisted.</summary>
    public sealed record Reconciled(string Name);
    public sealed record MarkFailed(string Reason);
    public sealed record RecordRestart(int Attempt, TimeSpan Delay, RestartType Type);

    /// <summary>The firewall rules the netvm actor enforces for its clients (replaces the set).</summary>
    public sealed record EnforceFirewalls(ImmutableArray<ClientFirewall> Clients);
    public sealed record EnforceClientFirewall(ClientFirewall Client);
    public sealed record ForgetClientFirewall(string Client);

    /// <summary>From a qube actor to <see cref="QubesSupervisor"/>: events it has persisted and applied.</summary>
    public sealed record QubeChanged(string Name, ImmutableArray<QubeEvent> Events, QubeState State);
    /// <summary>
    /// The domain stopped without being asked: from the qube actor to <see cref="QubesSupervisor"/>, which fills in the
    /// qube's current restart settings (the actor cannot keep them: it may have been restarted or re-spawned since the
    /// start) and forwards it to the group supervisor, which decides.
    /// </summary>
    public sealed record StoppedUnasked(QubeState State, RestartSettings? Settings, StopKind Kind);
    /// <summary>From a group supervisor upward: a qube hit its start limit.</summary>
    public sealed record Escalated(string Name, string Reason);
    public sealed record RestartDue(string Name, int Attempt);
    public sealed record CancelRestart(string Name);
    /// <summary>From a qube actor: an attach of this device (class:backend:port) is over, attached or not.</summary>
    public sealed record AttachEnded(string DeviceKey);
    /// <summary>Move to another group: the actor answers with its state and stops (processed only when idle).</summary>
    public sealed record HandOver;
    public sealed record HandedOver(QubeState State, long SequenceNr, string LastHash, ImmutableArray<ClientFirewall> ClientFirewalls);
    /// <summary>Ask the collection to bring a netvm up (start chain).</summary>
    public sealed record EnsureRunning(string Name, IActorRef ReplyTo);
}
