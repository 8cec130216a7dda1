using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using static QubesActors.Runtime.Actors.QubeProtocol;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Actors;

/// <summary>
/// One qube: owns its stream, drives its domain through the backend, enforces its clients' firewalls when it is a
/// netvm. Decisions about other qubes are the supervisor's; this actor only persists, applies, acts and replies.
/// One operation at a time: commands that arrive while a write or a backend call is in flight wait in the stash.
/// </summary>
public sealed class QubeActor : UntypedActor, IWithUnboundedStash, IWithTimers
{
    private readonly IDomainBackend _backend;
    private readonly IActorRef _collection;
    private readonly IActorRef _events;
    private readonly IActorRef _journal;
    /// <summary>A snapshot every this many events bounds what a daemon start reads per qube (docs/persistence.md).</summary>
    public const int SnapshotEvery = 25;
    private IActorRef? _snapshots;
    private long _snapshotAt;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private QubeState _state;
    private JournalStream _stream;
    private PendingWrite? _pending;
    private Action? _onWritten;
    private Action<Exception>? _onWriteFailed;
    /// <summary>Set while a backend call or a reply from another actor is awaited; offered every message first.</summary>
    private Func<object, bool>? _awaiting;
    private readonly Dictionary<string, ClientFirewall> _clientFirewalls = new(StringComparer.Ordinal);
    private List<DomainEvent>? _replay;
    private bool _expectingStop;
    /// <summary>The graceful shutdown in flight, so that a kill need not wait for shutdown_timeout.</summary>
    private CancellationTokenSource? _shutdown;
    private IActorRef? _killDuringShutdown;

    public QubeActor(QubeState state, long sequenceNr, string lastHash, IDomainBackend backend, IActorRef collection, IActorRef events, IActorRef journal)
    {
        _state = state;
        _backend = backend;
        _collection = collection;
        _events = events;
        _journal = journal;
        _stream = new JournalStream(JournalSettings.PersistenceIdOf(state.Uuid), sequenceNr, lastHash, journal);
    }

    public static Props Props(QubeState state, long sequenceNr, string lastHash, IDomainBackend backend, IActorRef collection, IActorRef events, IActorRef journal) =>
        // Not the expression overload: it compiles its arguments for every qube spawned (measurable at 1,000 creates).
        Akka.Actor.Props.Create<QubeActor>(state, sequenceNr, lastHash, backend, collection, events, journal);

    public IStash Stash { get; set; } = null!;
    public ITimerScheduler Timers { get; set; } = null!;

    private string Name => _state.Name;

    /// <summary>
    /// Restarted after throwing: the state passed at spawn is stale, so the stream is replayed from the journal and
    /// the running domain is re-adopted as the backend reports it, without being touched.
    /// </summary>
    protected override void PreStart() => FindSnapshotStore();

    private void FindSnapshotStore()
    {
        _snapshotAt = _stream.SequenceNr;
        try
        {
            _snapshots = Akka.Persistence.Persistence.Instance.Apply(Context.System).SnapshotStoreFor(null);
        }
        catch (Exception ex) when (ex is ArgumentException or Akka.Configuration.ConfigurationException or NullReferenceException)
        {
            _snapshots = null; // no snapshot store configured (some tests): recovery reads whole streams
        }
    }

    private void MaybeSnapshot()
    {
        if (_snapshots is null || _stream.SequenceNr - _snapshotAt < SnapshotEvery || _state.Removed)
            return;
        _snapshotAt = _stream.SequenceNr;
        _snapshots.Tell(new SaveSnapshot(new SnapshotMetadata(_stream.PersistenceId, _stream.SequenceNr, DateTime.UtcNow),
            new QubeSnapshot(_state, _stream.SequenceNr, _stream.LastHash)));
    }

    protected override void PostRestart(Exception reason)
    {
        _log.Warning("qube {0}: actor restarted after {1}; recovering from the journal", Name, reason.Message);
        FindSnapshotStore();
        _replay = [];
        _stream = new JournalStream(_stream.PersistenceId, 0, "", _journal);
        // After a journal failure, give the database a moment before reading it again (rides out a short outage
        // instead of burning the restart budget); after any other exception, re-read at once.
        if (reason is JournalWriteFailedException)
            Timers.StartSingleTimer("replay", new BeginReplay(), TimeSpan.FromSeconds(3));
        else
            Self.Tell(new BeginReplay());
    }

    protected override void OnReceive(object message)
    {
        if (_replay is not null)
        {
            Recovering(message);
            return;
        }
        if (_pending is not null && JournalStream.IsJournalReply(message))
        {
            OnJournalReply(message);
            return;
        }
        if (_awaiting is not null && _awaiting(message))
            return;
        // qvm-kill works at any time: a kill during a graceful shutdown cuts it short instead of waiting for the timeout.
        if (message is QubeProtocol.Kill kill && _shutdown is { } shutdown && _killDuringShutdown is null)
        {
            _killDuringShutdown = kill.ReplyTo;
            shutdown.Cancel();
            return;
        }
        if (_pending is not null || _awaiting is not null)
        {
            if (message is EnforceFirewalls or EnforceClientFirewall or ForgetClientFirewall)
                HandleFirewall(message);
            else
                Stash.Stash();
            return;
        }
        Handle(message);
    }

    private void Handle(object message)
    {
        switch (message)
        {
            case PersistEvents p: OnPersistEvents(p); break;
            case Start s: OnStart(s); break;
            case Shutdown s: OnShutdown(s); break;
            case QubeProtocol.Kill k: OnKill(k.Cause, k.ReplyTo, "killed"); break;
            case Pause p: OnPause(p); break;
            case Unpause u: OnUnpause(u.Cause, u.ReplyTo, u.AcknowledgeWhenThawed); break;
            case Suspend s: OnSuspend(s); break;
            case Resume r: OnResume(r); break;
            case DomainDied d: OnDomainDied(d); break;
            case NetworkChange n: Replumb(n.NewNetVm, EventCause.Supervisor("netvm changed")); break;
            case Ping: Sender.Tell(new Done(_state.Power.Wire())); break;
            case HandOver:
                _collection.Tell(new HandedOver(_state, _stream.SequenceNr, _stream.LastHash, [.. _clientFirewalls.Values]));
                Context.Stop(Self);
                break;
            case FailForTest f: throw new InvalidOperationException(f.Reason);
            case AttachDeviceNow a: OnAttachDevice(a); break;
            case DetachDeviceNow d: OnDetachDevice(d); break;
            case Reconcile r: OnReconcile(r); break;
            case MarkFailed f: Persist([new QubeFailed(f.Reason) { Time = Now, Cause = EventCause.Supervisor("start limit") }], () => { }); break;
            case RecordRestart r:
                Persist([new QubeRestartScheduled(r.Attempt, r.Delay) { Time = Now, Cause = EventCause.Supervisor($"restart policy {r.Type.RestartTypeName()}") }], () => { });
                break;
            case EnforceFirewalls or EnforceClientFirewall or ForgetClientFirewall: HandleFirewall(message); break;
            case BackendOpDone: break; // a late completion of an operation that already timed out
            case SaveSnapshotSuccess saved:
                // Older snapshots are never read again: keep only the newest.
                _snapshots?.Tell(new DeleteSnapshots(_stream.PersistenceId, new SnapshotSelectionCriteria(saved.Metadata.SequenceNr - 1)));
                break;
            case SaveSnapshotFailure failed:
                _log.Warning("qube {0}: snapshot at {1} not saved: {2}", Name, failed.Metadata.SequenceNr, failed.Cause.Message);
                break;
            case DeleteSnapshotsSuccess or DeleteSnapshotsFailure: break;
            case Status.Failure f: _log.Warning("qube {0}: {1}", Name, f.Cause.Message); break;
            default: Unhandled(message); break;
        }
    }

    // ---------------------------------------------------------------- persistence

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    private void Persist(IReadOnlyList<QubeEvent> events, Action then, Action<Exception>? onFailed = null)
    {
        if (events.Count == 0)
        {
            then();
            return;
        }
        // dom0 has no creation call: its stream starts with a synthesized creation the first time it changes.
        if (_stream.SequenceNr == 0 && events[0] is not QubeCreated)
            events = [AdminCreated(events[0]), .. events];
        _pending = _stream.Prepare(events, Self);
        _onWritten = then;
        _onWriteFailed = onFailed;
        _stream.Send(_pending);
    }

    private QubeCreated AdminCreated(QubeEvent first) =>
        new(_state.Uuid, _state.Name, _state.Class, _state.Qid, _state.Label, _state.Properties, _state.Tags, _state.Features, _state.Firewall, _state.DispId)
        { Time = first.Time, Cause = EventCause.System("stream start") };

    private void OnJournalReply(object message)
    {
        var write = _pending!;
        switch (_stream.Outcome(message, write))
        {
            case WriteOutcome.Succeeded:
                _stream.Commit(write);
                _pending = null;
                var applied = ImmutableArray.CreateBuilder<QubeEvent>();
                foreach (var e in write.Events.Cast<QubeEvent>())
                {
                    var before = _state;
                    _state = e is QubeCreated created ? QubeState.FromCreated(created) : _state.Apply(e);
                    applied.Add(e);
                    foreach (var notice in EventNotices.After(before, e))
                        _events.Tell(notice);
                }
                _collection.Tell(new QubeChanged(Name, applied.ToImmutable(), _state));
                MaybeSnapshot();
                var then = _onWritten;
                _onWritten = null;
                _onWriteFailed = null;
                then?.Invoke();
                UnstashIfIdle();
                break;
            case WriteOutcome.Rejected:
                // Nothing was stored (the event could not be serialized): state and stream are unchanged.
                _pending = null;
                var rejected = _onWriteFailed;
                _onWritten = null;
                _onWriteFailed = null;
                rejected?.Invoke(JournalStream.CauseOf(message) ?? new Exception("journal rejected the event"));
                // After a backend action the domain has changed although the journal did not: restart, re-read the
                // stream and take the domain as the backend reports it.
                if (write.Events.Any(e => e is QubeStarted or QubeStopped or QubePaused or QubeUnpaused or QubeSuspended or QubeResumed
                        or QubeDeviceAttached or QubeDeviceDetached or QubeNetworkAttached or QubeNetworkDetached))
                    throw new JournalWriteFailedException($"qube {Name}: journal rejected a record of a backend action", JournalStream.CauseOf(message));
                UnstashIfIdle();
                break;
            case WriteOutcome.Failed:
                // The outcome is unknown (the row may or may not be there): answer, then restart and recover from the journal.
                var cause = JournalStream.CauseOf(message);
                _onWriteFailed?.Invoke(cause ?? new Exception("journal write failed"));
                _pending = null;
                _onWritten = null;
                _onWriteFailed = null;
                _collection.Tell(new QubeChanged(Name, [], Reported));
                throw new JournalWriteFailedException($"qube {Name}: journal write failed: {cause?.Message}", cause);
        }
    }

    /// <summary>
    /// The state to report to the collection outside a successful write: a qube whose stream is still empty was never
    /// created (its creation write failed), so it is reported gone rather than left in the view half-made.
    /// </summary>
    private QubeState Reported => _stream.SequenceNr == 0 && _state.Class != QubeClass.AdminVM ? _state with { Removed = true } : _state;

    private void UnstashIfIdle()
    {
        if (_pending is null && _awaiting is null)
            Stash.UnstashAll();
    }

    private sealed record BeginReplay;

    private void Recovering(object message)
    {
        switch (message)
        {
            case BeginReplay:
                _journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, _stream.PersistenceId, Self));
                break;
            case ReplayedMessage r:
                var payload = r.Persistent.Payload is Tagged t ? t.Payload : r.Persistent.Payload;
                var e = (DomainEvent)payload;
                var bytes = EventCodec.Encode(e);
                var manifest = EventCodec.ManifestOf(e);
                if (e.PrevHash != _stream.LastHash)
                    throw new InvalidOperationException($"qube {Name}: chain broken at event {r.Persistent.SequenceNr}");
                _stream = new JournalStream(_stream.PersistenceId, r.Persistent.SequenceNr,
                    EventCodec.Hash(_stream.PersistenceId, r.Persistent.SequenceNr, manifest, bytes), _journal);
                _replay!.Add(e);
                break;
            case RecoverySuccess:
                var events = _replay!;
                _replay = null;
                if (events.Count > 0 && events[0] is QubeCreated first)
                    _state = events.Skip(1).Cast<QubeEvent>().Aggregate(QubeState.FromCreated(first), (s, ev) => s.Apply(ev));
                _log.Info("qube {0}: recovered {1} events, power state {2}", Name, events.Count, _state.Power);
                _collection.Tell(new QubeChanged(Name, [], Reported));
                // Re-adopt: ask the backend what it runs and take it as it is.
                _backend.ListDomainsAsync(CancellationToken.None)
                    .PipeTo(Self, success: list => new Reconcile(list.FirstOrDefault(d => d.Name == Name)?.State));
                Stash.UnstashAll();
                break;
            case ReplayMessagesFailure f:
                throw new JournalWriteFailedException($"qube {Name}: replay failed: {f.Cause.Message}", f.Cause);
            default:
                Stash.Stash();
                break;
        }
    }

    // ---------------------------------------------------------------- backend calls

    private sealed record BackendOpDone(int Op, Exception? Error, object? Result);
    private int _opCounter;

    /// <summary>Runs a backend call; <paramref name="then"/> runs on the actor when it completes.</summary>
    private void RunBackend(Func<CancellationToken, Task> call, Action<Exception?> then, CancellationToken ct = default)
    {
        var op = ++_opCounter;
        Task task;
        try
        {
            task = call(ct);
        }
        catch (Exception ex)
        {
            task = Task.FromException(ex);
        }
        task.ContinueWith(t => new BackendOpDone(op, t.Exception?.GetBaseException() ?? (t.IsCanceled ? new OperationCanceledException() : null), null),
            TaskScheduler.Default).PipeTo(Self);
        _awaiting = message =>
        {
            if (message is not BackendOpDone done || done.Op != op)
                return false;
            _awaiting = null;
            then(done.Error);
            UnstashIfIdle();
            return true;
        };
    }

    private void Publish(string name, params (string, string)[] args) => _events.Tell(QubesEventNotice.Of(Name, name, args));

    private static void Reply(IActorRef? replyTo, CommandResult result) => replyTo?.Tell(result);

    /// <summary>The domain changed but its record did not get written: the actor restarts and re-adopts the domain.</summary>
    private static Refused RecordFailed(Exception ex) => new(new QubesError($"Failed to record the change: {ex.Message}"));

    // ---------------------------------------------------------------- lifecycle

    private void OnPersistEvents(PersistEvents p)
    {
        void Answer(CommandResult result)
        {
            if (p.MutationId != 0)
                p.ReplyTo.Tell(new MutationDone(p.MutationId, result));
            else
                Reply(p.ReplyTo, result);
        }

        // The supervisor decided on its view; this actor's own state is the last word on power-state guards
        // (a start may have been under way when a removal or a template change was decided).
        if (Refusal(p.Events) is { } refusal)
        {
            Answer(new Refused(refusal));
            return;
        }
        Persist(p.Events, () =>
        {
            Answer(new Done(p.Output));
            if (p.Network is { } change)
                Replumb(change.NewNetVm, p.Events[0].Cause);
        }, ex => Answer(new Refused(new QubesError($"Failed to record the change: {ex.Message}"))));
    }

    /// <summary>Why these events cannot follow the current state, or null: nothing illegal is ever journaled.</summary>
    private QubesError? Refusal(IReadOnlyList<QubeEvent> events)
    {
        if (_state.Removed)
            return new QubesVMNotFoundError(Name);
        var state = _state;
        foreach (var e in events)
        {
            if (e is QubePropertySet { Property: "template" } && state.Power.IsActive())
                return new QubesVMNotHaltedError("Cannot change template while qube is running");
            if (e is QubeRemoved && state.Power.IsActive())
                return QubesVMNotHaltedError.Default(Name);
            try
            {
                state = e is QubeCreated created ? QubeState.FromCreated(created) : state.Apply(e);
            }
            catch (InvalidOperationException ex)
            {
                return new QubesVMError(ex.Message);
            }
        }
        return null;
    }

    private void OnStart(Start s)
    {
        if (_state.Power != PowerState.Halted)
        {
            Reply(s.ReplyTo, new Done()); // qubesd: start of an active qube is a silent no-op
            return;
        }
        // As systemd's start-limit-hit: a failed qube stays down, whoever asks, until reset-failed clears it.
        if (_state.Failed)
        {
            Reply(s.ReplyTo, new Refused(new QubesVMError($"Qube {Name} has failed ({_state.FailedReason}); clear it with reset-failed first")));
            return;
        }
        if (s.StartRefusal is { } refusal)
        {
            FailStart(refusal.Message, refusal, s);
            return;
        }
        Publish("domain-pre-start");
        if (s.NetVm is null)
        {
            Launch(s);
            return;
        }
        _collection.Tell(new EnsureRunning(s.NetVm, Self));
        _awaiting = message =>
        {
            if (message is not CommandResult result)
                return false;
            _awaiting = null;
            if (result is Refused r)
                FailStart(r.Error.Message, r.Error, s);
            else
                Launch(s);
            UnstashIfIdle();
            return true;
        };
    }

    /// <summary>
    /// Transient and Halting are the time between a request and its outcome: they are shown (the collection sees them)
    /// but not persisted; the journal records outcomes with their cause, and a daemon killed in between learns the
    /// outcome from the backend when it reconciles (docs/persistence.md).
    /// </summary>
    private void Transitional(PowerState power, string? netvm)
    {
        _state = _state with { Power = power, ConnectedNetVm = netvm };
        _collection.Tell(new QubeChanged(Name, [], _state));
    }

    private void Launch(Start s)
    {
        Transitional(PowerState.Transient, s.NetVm);
        Publish("domain-pre-spawn");
        RunBackend(ct => _backend.StartAsync(s.Spec, ct), error =>
        {
            if (error is not null)
            {
                FailStart(error.Message, new QubesError($"Start failed: {error.Message}"), s);
                return;
            }
            Persist([new QubeStarted(PowerState.Running, s.NetVm) { Time = Now, Cause = s.Cause }], () =>
            {
                // Required and auto-attach devices follow from the supervisor's view of this start.
                Reply(s.ReplyTo, new Done());
                ApplyClientFirewalls();
            }, ex => Reply(s.ReplyTo, new Refused(new QubesError($"Start failed: {ex.Message}"))));
        });
    }

    private void FailStart(string reason, QubesError error, Start s) =>
        Persist([new QubeStartFailed(reason) { Time = Now, Cause = s.Cause }], () =>
        {
            Reply(s.ReplyTo, new Refused(error));
            // A restart that fails counts as another crash: the policy decides again (backoff, then the start limit).
            if (s.Cause.Kind == EventCause.SupervisorKind && s.Cause.Detail?.StartsWith("restart", StringComparison.Ordinal) == true)
                _collection.Tell(new StoppedUnasked(_state, null, StopKind.Crashed));
        }, _ => Reply(s.ReplyTo, new Refused(error)));

    private void OnShutdown(Shutdown s)
    {
        if (!_state.Power.IsActive())
        {
            Reply(s.ReplyTo, new Refused(QubesVMNotStartedError.Default(Name)));
            return;
        }
        if (_state.Power is PowerState.Paused or PowerState.Suspended)
        {
            if (!s.Force)
            {
                Reply(s.ReplyTo, new Refused(QubesVMNotRunningError.Default(Name)));
                return;
            }
            OnKill(s.Cause, s.ReplyTo, "paused qube destroyed by forced shutdown");
            return;
        }
        Publish("domain-pre-shutdown", ("force", s.Force ? "True" : "False"));
        Transitional(PowerState.Halting, _state.ConnectedNetVm);
        {
            var cts = new CancellationTokenSource(s.Timeout);
            _shutdown = cts;
            _expectingStop = true;
            RunBackend(ct => _backend.ShutdownAsync(Name, cts.Token), error =>
            {
                _shutdown = null;
                cts.Dispose();
                if (_killDuringShutdown is { } killer)
                {
                    _killDuringShutdown = null;
                    RunBackend(ct => _backend.KillAsync(Name, ct), _ =>
                        Stopped(StopKind.Killed, "killed during shutdown", s.Cause, () =>
                        {
                            killer.Tell(new Done());
                            if (s.Wait)
                                Reply(s.ReplyTo, new Done());
                        }));
                    return;
                }
                if (error is null)
                {
                    Stopped(StopKind.Shutdown, null, s.Cause, () => { if (s.Wait) Reply(s.ReplyTo, new Done()); });
                    return;
                }
                // Graceful shutdown did not finish within shutdown_timeout: fall back to kill (DESIGN.md).
                var reason = error is OperationCanceledException
                    ? $"shutdown timed out after {s.Timeout.TotalSeconds:0}s"
                    : $"shutdown failed: {error.Message}";
                Publish("domain-shutdown-failed", ("reason", reason));
                RunBackend(ct => _backend.KillAsync(Name, ct), _ =>
                    Stopped(StopKind.Killed, reason, s.Cause, () =>
                    {
                        if (s.Wait)
                            Reply(s.ReplyTo, new Refused(QubesVMShutdownTimeoutError.Default(Name)));
                    }));
            });
            // Without wait the answer comes once the backend has the request (RunBackend issued it synchronously),
            // as qubesd answers after libvirt's shutdown call: a daemon killed now leaves a domain that still halts.
            if (!s.Wait)
                Reply(s.ReplyTo, new Done());
        }
    }

    private void OnKill(EventCause cause, IActorRef? replyTo, string reason)
    {
        if (!_state.Power.IsActive())
        {
            Reply(replyTo, new Refused(QubesVMNotStartedError.Default(Name)));
            return;
        }
        _expectingStop = true;
        RunBackend(ct => _backend.KillAsync(Name, ct), error =>
        {
            if (error is not null)
            {
                // Recording a domain as stopped while it runs would drop its firewall at the netvm: keep the state.
                _expectingStop = false;
                Reply(replyTo, new Refused(new QubesVMError($"Failed to kill: {error.Message}")));
                return;
            }
            Stopped(StopKind.Killed, reason, cause, () => Reply(replyTo, new Done()), replyTo);
        });
    }

    private void Stopped(StopKind kind, string? reason, EventCause cause, Action then, IActorRef? replyTo = null)
    {
        _expectingStop = false;
        Persist([new QubeStopped(kind, reason) { Time = Now, Cause = cause }], then,
            ex => Reply(replyTo, new Refused(new QubesError($"Failed to record the stop: {ex.Message}"))));
    }

    private void OnPause(Pause p)
    {
        if (_state.Power is not (PowerState.Running or PowerState.Transient))
        {
            Reply(p.ReplyTo, new Refused(QubesVMNotRunningError.Default(Name)));
            return;
        }
        Publish("domain-pre-paused");
        RunBackend(ct => _backend.PauseAsync(Name, ct), error =>
        {
            if (error is not null)
                Reply(p.ReplyTo, new Refused(new QubesVMError($"Failed to pause: {error.Message}")));
            else
                Persist([new QubePaused { Time = Now, Cause = p.Cause }], () => Reply(p.ReplyTo, new Done()), ex => Reply(p.ReplyTo, RecordFailed(ex)));
        });
    }

    private void OnUnpause(EventCause cause, IActorRef replyTo, bool acknowledgeWhenThawed = false)
    {
        if (_state.Power == PowerState.Suspended)
        {
            OnResume(new Resume(cause, replyTo));
            return;
        }
        if (_state.Power != PowerState.Paused)
        {
            Reply(replyTo, new Refused(QubesVMNotPausedError.Default(Name)));
            return;
        }
        Publish("domain-pre-unpaused");
        RunBackend(ct => _backend.UnpauseAsync(Name, ct), error =>
        {
            if (error is not null)
                Reply(replyTo, new Refused(new QubesVMError($"Failed to unpause: {error.Message}")));
            else if (acknowledgeWhenThawed)
            {
                Reply(replyTo, new Done());
                Persist([new QubeUnpaused { Time = Now, Cause = cause }], () => { });
            }
            else
                Persist([new QubeUnpaused { Time = Now, Cause = cause }], () => Reply(replyTo, new Done()), ex => Reply(replyTo, RecordFailed(ex)));
        });
    }

    private void OnSuspend(Suspend s)
    {
        if (_state.Power is not (PowerState.Running or PowerState.Transient or PowerState.Paused))
        {
            Reply(s.ReplyTo, new Refused(QubesVMNotRunningError.Default(Name)));
            return;
        }
        var suspended = false;
        RunBackend(async ct => suspended = await _backend.SuspendAsync(Name, ct), error =>
        {
            if (error is not null)
                Reply(s.ReplyTo, new Refused(new QubesVMError($"Failed to suspend: {error.Message}")));
            else
                Persist([suspended ? new QubeSuspended { Time = Now, Cause = s.Cause } : new QubePaused { Time = Now, Cause = s.Cause }],
                    () => Reply(s.ReplyTo, new Done()), ex => Reply(s.ReplyTo, RecordFailed(ex)));
        });
    }

    private void OnResume(Resume r)
    {
        if (_state.Power == PowerState.Paused)
        {
            OnUnpause(r.Cause, r.ReplyTo);
            return;
        }
        if (_state.Power != PowerState.Suspended)
        {
            Reply(r.ReplyTo, new Refused(QubesVMNotPausedError.Default(Name)));
            return;
        }
        RunBackend(ct => _backend.ResumeAsync(Name, ct), error =>
        {
            if (error is not null)
                Reply(r.ReplyTo, new Refused(new QubesVMError($"Failed to resume: {error.Message}")));
            else
                Persist([new QubeResumed { Time = Now, Cause = r.Cause }], () => Reply(r.ReplyTo, new Done()), ex => Reply(r.ReplyTo, RecordFailed(ex)));
        });
    }

    private void OnDomainDied(DomainDied d)
    {
        if (!_state.Power.IsActive() || _expectingStop)
            return;
        var kind = d.Crashed ? StopKind.Crashed : StopKind.Shutdown;
        _log.Warning("qube {0}: domain died ({1})", Name, d.Reason);
        Stopped(kind, d.Reason, EventCause.Backend(d.Reason), () => _collection.Tell(new StoppedUnasked(_state, null, kind)));
    }

    private void OnReconcile(Reconcile r)
    {
        var cause = EventCause.System("reconciliation after daemon restart");
        var backendActive = r.BackendState is { } b && b.IsActive();
        var done = new Reconciled(Name);
        if (_state.Class == QubeClass.AdminVM)
        {
            _collection.Tell(done);
            return;
        }
        if (_state.Power.IsActive() && !backendActive)
        {
            // Gone while qubesd was down: shut down on request or crashed, nobody can tell. It is left down rather
            // than restarted against a user's shutdown; qubes with autostart come back through autostart.
            Stopped(StopKind.Shutdown, "not running after daemon restart (stopped while qubesd was down)", cause, () => _collection.Tell(done));
        }
        else if (backendActive && _state.Power != r.BackendState)
        {
            Persist([new QubeAdopted(r.BackendState!.Value) { Time = Now, Cause = cause }], () =>
            {
                ApplyClientFirewalls();
                _collection.Tell(done);
            });
        }
        else
        {
            if (backendActive)
                ApplyClientFirewalls();
            _collection.Tell(done);
        }
    }

    // ---------------------------------------------------------------- network

    private void Replumb(string? newNetVm, EventCause cause)
    {
        if (!_state.Power.IsActive() || _state.ConnectedNetVm == newNetVm)
            return;
        var old = _state.ConnectedNetVm;
        if (old is not null)
            RunBackend(ct => _backend.DetachNetworkAsync(Name, ct), error =>
            {
                if (error is not null)
                {
                    // Still linked to the old netvm: record nothing, so its rules stay enforced there.
                    _log.Warning("qube {0}: cannot detach from {1}: {2}", Name, old, error.Message);
                    return;
                }
                Persist([new QubeNetworkDetached(old) { Time = Now, Cause = cause }], () => Attach(newNetVm, cause));
            });
        else
            Attach(newNetVm, cause);
    }

    private void Attach(string? netvm, EventCause cause)
    {
        if (netvm is null)
            return;
        RunBackend(ct => _backend.AttachNetworkAsync(Name, netvm, ct), error =>
        {
            if (error is not null)
                _log.Warning("qube {0}: cannot attach network to {1}: {2}", Name, netvm, error.Message);
            else
                Persist([new QubeNetworkAttached(netvm) { Time = Now, Cause = cause }], () => { });
        });
    }

    private void HandleFirewall(object message)
    {
        switch (message)
        {
            case EnforceFirewalls all:
                var stale = _clientFirewalls.Keys.Except(all.Clients.Select(c => c.Client)).ToList();
                _clientFirewalls.Clear();
                foreach (var c in all.Clients)
                    _clientFirewalls[c.Client] = c;
                if (_state.Power.IsActive())
                {
                    foreach (var client in stale)
                        FireAndForget(ct => _backend.RemoveFirewallAsync(Name, client, ct));
                    ApplyClientFirewalls();
                }
                break;
            case EnforceClientFirewall one:
                _clientFirewalls[one.Client.Client] = one.Client;
                if (_state.Power.IsActive())
                    FireAndForget(ct => _backend.ApplyFirewallAsync(Name, one.Client, ct));
                break;
            case ForgetClientFirewall forget:
                if (_clientFirewalls.Remove(forget.Client) && _state.Power.IsActive())
                    FireAndForget(ct => _backend.RemoveFirewallAsync(Name, forget.Client, ct));
                break;
        }
    }

    private void ApplyClientFirewalls()
    {
        foreach (var rules in _clientFirewalls.Values)
            FireAndForget(ct => _backend.ApplyFirewallAsync(Name, rules, ct));
    }

    private void FireAndForget(Func<CancellationToken, Task> call)
    {
        var name = Name;
        call(CancellationToken.None).ContinueWith(t =>
        {
            if (t.IsFaulted)
                _log.Warning("qube {0}: firewall update failed: {1}", name, t.Exception?.GetBaseException().Message);
        }, TaskScheduler.Default);
    }

    // ---------------------------------------------------------------- devices

    private void OnAttachDevice(AttachDeviceNow a)
    {
        var key = $"{a.Device.DeviceClass}:{a.Device.Address}";
        // Every way out releases the collection's reservation of the device.
        void End(CommandResult result)
        {
            Reply(a.ReplyTo, result);
            _collection.Tell(new AttachEnded(key));
        }

        if (!_state.Power.IsActive())
        {
            End(new Refused(new QubesVMNotRunningError("VM not running, cannot attach device, do you mean `assign`?")));
            return;
        }
        if (_state.Attachments.ContainsKey(key))
        {
            End(new Refused(new DeviceAlreadyAttached($"device {a.Device.Address} of class {a.Device.DeviceClass} already attached to {Name}")));
            return;
        }
        Publish($"device-pre-attach:{a.Device.DeviceClass}", ("device", a.Device.Address));
        RunBackend(ct => _backend.AttachDeviceAsync(Name, a.Device, a.Options, ct), error =>
        {
            if (error is not null)
                End(new Refused(new QubesError($"Failed to attach {a.Device.Address}: {error.Message}")));
            else
                Persist([new QubeDeviceAttached(a.Device.DeviceClass, a.Device.Address, a.Options) { Time = Now, Cause = a.Cause }],
                    () => End(new Done()), ex => End(new Refused(new QubesError($"Failed to record the attachment: {ex.Message}"))));
        });
    }

    private void OnDetachDevice(DetachDeviceNow d)
    {
        var key = $"{d.DeviceClass}:{d.Device.Address}";
        if (!_state.Attachments.ContainsKey(key))
        {
            Reply(d.ReplyTo, new Refused(new DeviceNotAssigned($"device {d.Device.Address} of class {d.DeviceClass} not attached to {Name}")));
            return;
        }
        Publish($"device-pre-detach:{d.DeviceClass}", ("port", d.Device.Address));
        RunBackend(ct => _backend.DetachDeviceAsync(Name, d.Device, ct), error =>
        {
            // A device whose backend stopped or that vanished is gone either way; one an administrator detaches is
            // still attached if the backend says it could not detach it, and must not be handed to another qube.
            if (error is not null && d.ReplyTo is not null)
            {
                Reply(d.ReplyTo, new Refused(new QubesError($"Failed to detach {d.Device.Address}: {error.Message}")));
                return;
            }
            Persist([new QubeDeviceDetached(d.DeviceClass, d.Device.Address, d.Reason) { Time = Now, Cause = d.Cause }],
                () => Reply(d.ReplyTo, new Done()), ex => Reply(d.ReplyTo, new Refused(new QubesError($"Failed to record the detach: {ex.Message}"))));
        });
    }
}
