using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Firewall;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using static QubesActors.Runtime.Actors.QubeProtocol;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Actors;

/// <summary>
/// <c>/user/qubes</c>: the collection. Holds a view of every qube (kept current by the qube actors' change reports),
/// decides cross-qube invariants with the pure rules of Core, routes lifecycle commands to the qube actors and keeps
/// networks, firewalls and devices consistent when qubes come and go. Collection changes are decided one at a time
/// (the next waits until the previous one is persisted), so no decision ever reads a stale view.
/// </summary>
public sealed class QubesSupervisor : UntypedActor, IWithUnboundedStash, IWithTimers
{
    private const string Services = "services";
    private const string Apps = "apps";
    private const string Disposables = "disposables";
    private const string Admin = "admin";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IDomainBackend _backend;
    private readonly IActorRef _events;
    private readonly IActorRef _journal;
    private readonly Func<LoadedJournal> _load;
    private readonly Dictionary<string, IActorRef> _groups = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IActorRef> _groupOf = new(StringComparer.Ordinal);
    /// <summary>Qubes whose actor moves to another group (e.g. an app qube that became a netvm): messages wait here.</summary>
    private readonly Dictionary<string, List<(object Message, IActorRef Sender)>> _moving = new(StringComparer.Ordinal);
    // Immutable, so that a snapshot shares them instead of copying them on every read.
    private ImmutableSortedDictionary<string, string> _quarantined = ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);
    private ImmutableDictionary<string, ImmutableArray<BackendDevice>> _available = ImmutableDictionary.Create<string, ImmutableArray<BackendDevice>>(StringComparer.Ordinal);
    private CollectionSnapshot? _snapshot;
    /// <summary>Qubes whose reconciliation after a restart has not finished; the daemon is not ready before.</summary>
    private readonly HashSet<string> _reconciling = new(StringComparer.Ordinal);
    private Dictionary<string, RunningDomain>? _runningAtStart;
    private static readonly TimeSpan ReconcileTimeout = TimeSpan.FromSeconds(30);
    private sealed record ReconcileOverdue;
    private sealed record AutostartDue;
    /// <summary>Devices with an attach in flight, and to which qube (cleared by <see cref="AttachEnded"/>).</summary>
    private readonly Dictionary<string, string> _attaching = new(StringComparer.Ordinal);
    /// <summary>Which netvm currently enforces which client's rules, and the rules sent.</summary>
    private readonly Dictionary<string, (string NetVm, ImmutableArray<string> Rules)> _enforced = new(StringComparer.Ordinal);
    private readonly List<IActorRef> _readyWaiters = [];
    /// <summary>What the qube actors have persisted (their change reports) and the collection stream.</summary>
    private CollectionState _confirmed = CollectionState.Empty;
    /// <summary>
    /// The view every decision reads: <see cref="_confirmed"/> plus the changes decided but not yet persisted
    /// (<see cref="_pending"/>), so that changes to different qubes go to their actors concurrently and no decision
    /// reads a stale view. Decided changes are idempotent data events, so re-applying one already confirmed is harmless.
    /// </summary>
    private CollectionState _view = CollectionState.Empty;
    private readonly Dictionary<string, List<QubeEvent>> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<long, InFlight> _inFlight = [];
    private long _nextMutationId;
    private bool _globalWaiting;
    private JournalStream? _collectionStream;
    private PendingWrite? _collectionWrite;
    /// <summary>Set when a collection write failed with an unknown outcome: the stream head is unknown until the next start.</summary>
    private string? _collectionStreamUnknown;
    private Action? _afterCollectionWrite;
    /// <summary>The caller of the global change being written to the collection stream.</summary>
    private IActorRef? _collectionCaller;
    private bool _ready;
    private TimeSpan _recoveryTime;
    private bool _journalWasEmpty;
    private IDisposable? _backendSubscription;
    /// <summary>Receives the answers to commands the supervisor issues itself (autostart, restarts, cleanup) and logs refusals.</summary>
    private IActorRef _results = ActorRefs.Nobody;

    public QubesSupervisor(IDomainBackend backend, IActorRef events, IActorRef journal, Func<LoadedJournal> load)
    {
        _backend = backend;
        _events = events;
        _journal = journal;
        _load = load;
    }

    public static Props Props(IDomainBackend backend, IActorRef events, IActorRef journal, Func<LoadedJournal> load) =>
        Akka.Actor.Props.Create(() => new QubesSupervisor(backend, events, journal, load));

    public IStash Stash { get; set; } = null!;
    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record InFlight(IActorRef Caller, string Qube, ImmutableArray<QubeEvent> Events);
    private sealed record Loaded(LoadedJournal Journal);
    private sealed record BackendDomains(IReadOnlyList<RunningDomain> Domains);
    private sealed record DevicesListed(string Backend, IReadOnlyList<BackendDevice> Devices);
    private sealed record CleanupDisposable(string Name);
    private sealed record FromBackend(BackendEvent Event);
    private sealed record FirewallRuleExpired(string Client);

    protected override void PreStart()
    {
        foreach (var group in new[] { Admin, Services, Apps, Disposables })
            _groups[group] = Context.ActorOf(DomainSupervisor.Props(_backend, _events, _journal), group);
        _results = Context.ActorOf(Akka.Actor.Props.Create<ResultLog>(), "results");
        var self = Self;
        _backendSubscription = _backend.Subscribe(e => self.Tell(new FromBackend(e)));
        // The bulk read is blocking I/O: run it off the actor's thread and get the result as a message.
        Task.Run(() => new Loaded(_load())).PipeTo(Self);
    }

    protected override void PostStop() => _backendSubscription?.Dispose();

    /// <summary>A group (services, apps) restarting would lose the grandchildren; restart keeps children, so resume.</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(ex => Directive.Resume);

    protected override void OnReceive(object message)
    {
        if (!_ready)
        {
            Starting(message);
            return;
        }
        if (_collectionWrite is not null && JournalStream.IsJournalReply(message))
        {
            OnCollectionJournalReply(message);
            return;
        }
        switch (message)
        {
            case QubeChanged c: OnQubeChanged(c); return;
            case MutationDone m: EndMutation(m); return;
            case GetCollection: Sender.Tell(Snapshot()); return;
            case WaitUntilReady: Sender.Tell(new Ready(_recoveryTime, _view.Qubes.Count, _quarantined.Count, _journalWasEmpty)); return;
            case FromBackend b: OnBackendEvent(b.Event); return;
            case DevicesListed d: OnDevicesListed(d); return;
            case EnsureRunning e: OnStart(e.Name, EventCause.Supervisor("netvm of a starting qube"), e.ReplyTo); return;
            case RestartDue r: OnStart(r.Name, EventCause.Supervisor($"restart {r.Attempt}"), _results); return;
            case Escalated e: OnEscalated(e); return;
            case StoppedUnasked s:
                if (_groupOf.TryGetValue(s.State.Name, out var group))
                    group.Forward(s with { Settings = RestartSettingsOf(_view.Find(s.State.Name) ?? s.State) });
                return;
            case DomainSupervisor.QubeActorStopped s: OnActorStopped(s.Name); return;
            case HandedOver h: OnHandedOver(h); return;
            case FirewallRuleExpired f: SyncFirewall(f.Client); return;
            case AttachEnded a: _attaching.Remove(a.DeviceKey); return;
            case BackendDomains: return;
            case AutostartDue: Autostart(); return;
            case Reconciled or ReconcileOverdue: return;
            case Status.Failure f: _log.Error(f.Cause, "background task failed"); return;
        }
        if (message is IQubesCommand command && IsLifecycle(command))
        {
            Try(() => OnLifecycle(command));
            return;
        }
        if (message is IQubesCommand or CleanupDisposable)
        {
            // Global changes read every qube: they wait for qube changes in flight, and new qube changes wait behind
            // a global change that is waiting (so that a steady load of qube changes cannot starve it).
            if (_collectionWrite is not null || _globalWaiting || IsGlobal(message) && _inFlight.Count > 0)
            {
                _globalWaiting |= IsGlobal(message);
                Stash.Stash();
                return;
            }
            Try(() => OnMutation(message));
            return;
        }
        Unhandled(message);
    }

    private void Try(Action action)
    {
        try
        {
            action();
        }
        catch (QubesError error)
        {
            Sender.Tell(new Refused(error));
        }
    }

    // ------------------------------------------------------------------ recovery

    private void Starting(object message)
    {
        switch (message)
        {
            case Loaded l:
                Recover(l.Journal);
                break;
            case Status.Failure f:
                _log.Error(f.Cause, "journal could not be loaded");
                throw new InvalidOperationException("journal could not be loaded", f.Cause);
            case BackendDomains b:
                Reconcile(b.Domains);
                break;
            case Reconciled r:
                if (_reconciling.Remove(r.Name) && _reconciling.Count == 0)
                    FinishStart();
                break;
            case ReconcileOverdue when _runningAtStart is not null:
                _log.Warning("{0} qubes did not finish reconciliation in time: {1}", _reconciling.Count, string.Join(", ", _reconciling.Order(StringComparer.Ordinal)));
                FinishStart();
                break;
            default:
                Stash.Stash();
                break;
        }
    }

    private void Recover(LoadedJournal journal)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        _journalWasEmpty = journal.IsEmpty;
        var recovered = CollectionRecovery.Recover(journal);
        foreach (var problem in recovered.Problems)
            _log.Error("journal: {0}", problem);
        _view = _confirmed = recovered.State;
        foreach (var (name, reason) in recovered.Quarantined)
            _quarantined = _quarantined.SetItem(name, reason);
        var collection = journal.Collection;
        _collectionStream = new JournalStream(JournalSettings.CollectionPersistenceId, collection?.LastSequenceNr ?? 0, collection?.LastHash ?? "", _journal);
        foreach (var qube in _view.Qubes.Values)
        {
            if (_quarantined.ContainsKey(qube.Name))
                continue;
            var stream = recovered.Streams.GetValueOrDefault(qube.Name);
            Spawn(new SpawnQube(qube, stream?.LastSequenceNr ?? 0, stream?.LastHash ?? ""));
        }
        _recoveryTime = journal.Elapsed + clock.Elapsed;
        _log.Info("recovered {0} qubes ({1} quarantined) in {2:0} ms", _view.Qubes.Count, _quarantined.Count, _recoveryTime.TotalMilliseconds);
        _backend.ListDomainsAsync(CancellationToken.None).PipeTo(Self, success: list => new BackendDomains(list));
    }

    /// <summary>
    /// Domains keep running while the daemon is down: take over what runs, record what died. The daemon is ready
    /// (serves the Admin API) only once every qube has reconciled, so that no caller sees a state that is already
    /// known to be wrong (a qube listed Running whose domain is gone).
    /// </summary>
    private void Reconcile(IReadOnlyList<RunningDomain> running)
    {
        var byName = running.ToDictionary(d => d.Name, StringComparer.Ordinal);
        _runningAtStart = byName;
        foreach (var qube in _view.Qubes.Values)
        {
            if (qube.Class == QubeClass.AdminVM || _quarantined.ContainsKey(qube.Name))
                continue;
            byName.TryGetValue(qube.Name, out var domain);
            if (qube.Power.IsActive() || domain is not null)
            {
                _reconciling.Add(qube.Name);
                ToActor(qube.Name, new Reconcile(domain?.State));
            }
            if (domain is not null)
                _enforced.Remove(qube.Name);
        }
        if (_reconciling.Count == 0)
            FinishStart();
        else
            Timers.StartSingleTimer("reconcile-overdue", new ReconcileOverdue(), ReconcileTimeout);
    }

    private void FinishStart()
    {
        if (_ready || _runningAtStart is not { } byName)
            return;
        _reconciling.Clear();
        Timers.Cancel("reconcile-overdue");
        _ready = true;
        ListDevices(CollectionState.AdminName);
        foreach (var qube in _view.Qubes.Values.Where(q => byName.ContainsKey(q.Name)))
        {
            ListDevices(qube.Name);
            SyncFirewall(qube.Name);
        }
        foreach (var w in _readyWaiters)
            w.Tell(new Ready(_recoveryTime, _view.Qubes.Count, _quarantined.Count, _journalWasEmpty));
        Stash.UnstashAll();
        // After the stashed changes of the reconciliation (a qube found stopped is Halted by then), so that a qube
        // with autostart whose domain died while qubesd was down comes back too.
        Self.Tell(new AutostartDue());
    }

    /// <summary>Autostart (qubesd starts these at boot); the netvm chain comes up on the way. Adopted domains are left alone.</summary>
    private void Autostart()
    {
        var adopted = _runningAtStart ?? [];
        foreach (var qube in _view.Qubes.Values.Where(q => q.Class != QubeClass.AdminVM && !q.Power.IsActive() && !adopted.ContainsKey(q.Name)
                                                            && !q.Failed && !_quarantined.ContainsKey(q.Name) && _view.EffectiveBool(q, "autostart")))
            OnStart(qube.Name, EventCause.System("autostart"), _results);
    }

    private void Spawn(SpawnQube spawn)
    {
        var group = _groups[GroupFor(spawn.State)];
        _groupOf[spawn.State.Name] = group;
        group.Tell(spawn);
    }

    private string GroupFor(QubeState q) => q.Class switch
    {
        QubeClass.AdminVM => Admin,
        QubeClass.DispVM when !_view.EffectiveBool(q, "provides_network") => Disposables,
        _ when _view.IsServiceQube(q) => Services,
        _ => Apps,
    };


    private void ToActor(string name, object message)
    {
        if (_moving.TryGetValue(name, out var waiting))
            waiting.Add((message, Sender));
        else if (_groupOf.TryGetValue(name, out var group))
            group.Tell(new ToQube(name, message), Sender);
    }

    /// <summary>The same snapshot object until something in it changes: Admin API reads ask for one per call.</summary>
    private CollectionSnapshot Snapshot()
    {
        if (_snapshot is not { } s || !ReferenceEquals(s.State, _view) || !ReferenceEquals(s.Quarantined, _quarantined) || !ReferenceEquals(s.AvailableDevices, _available))
            _snapshot = s = new(_view, _quarantined, _available, true);
        return s;
    }

    // ------------------------------------------------------------------ collection changes

    private static bool IsGlobal(object message) =>
        message is SetGlobalProperty or ResetGlobalProperty or CreateLabel or RemoveLabel or QubesProtocol.InitializeLayout;

    private void BeginMutation(string qube, IReadOnlyList<QubeEvent> events, string output = "", NetworkChange? network = null, IActorRef? caller = null)
    {
        var id = ++_nextMutationId;
        _inFlight[id] = new InFlight(caller ?? Sender, qube, [.. events]);
        if (!_pending.TryGetValue(qube, out var pending))
            _pending[qube] = pending = [];
        pending.AddRange(events);
        Refresh(qube);
        ToActor(qube, new PersistEvents([.. events], Self, output, network, id));
    }

    private void EndMutation(MutationDone done)
    {
        if (!_inFlight.Remove(done.MutationId, out var flight))
            return;
        if (_pending.TryGetValue(flight.Qube, out var pending))
        {
            foreach (var e in flight.Events)
                pending.Remove(e);
            if (pending.Count == 0)
                _pending.Remove(flight.Qube);
        }
        Refresh(flight.Qube);
        if (done.Result is Refused && flight.Events.Any(e => e is QubeCreated) && _confirmed.Find(flight.Qube) is null)
        {
            _groupOf.Remove(flight.Qube, out var group);
            group?.Tell(new StopQubeActor(flight.Qube));
        }
        flight.Caller.Tell(done.Result);
        if (_inFlight.Count == 0)
        {
            _globalWaiting = false;
            Stash.UnstashAll();
        }
    }

    /// <summary>Recomputes one qube's entry of the view: its confirmed state with its pending changes on top.</summary>
    private void Refresh(string name)
    {
        var state = _confirmed.Find(name);
        if (_pending.TryGetValue(name, out var pending))
            foreach (var e in pending)
            {
                if (e is QubeCreated created)
                    state ??= QubeState.FromCreated(created);
                else if (state is not null)
                    try
                    {
                        state = state.Apply(e);
                    }
                    catch (InvalidOperationException)
                    {
                        // Not applicable any more (the qube changed meanwhile); its actor will refuse or confirm it.
                    }
            }
        _view = state is null || state.Removed ? _view with { Qubes = _view.Qubes.Remove(name) } : _view.WithQube(state);
    }

    private void PersistCollection(CollectionEvent e, Action then)
    {
        if (_collectionStreamUnknown is not null)
            throw new QubesError($"Global changes are refused until qubesd restarts: {_collectionStreamUnknown}");
        _collectionWrite = _collectionStream!.Prepare([e], Self);
        _afterCollectionWrite = then;
        _collectionCaller = Sender;
        _collectionStream.Send(_collectionWrite);
    }

    private void OnCollectionJournalReply(object message)
    {
        var write = _collectionWrite!;
        var outcome = _collectionStream!.Outcome(message, write);
        if (outcome is WriteOutcome.NotMine or WriteOutcome.Progress)
            return;
        var caller = _collectionCaller!;
        _collectionWrite = null;
        _collectionCaller = null;
        if (outcome == WriteOutcome.Succeeded)
        {
            _collectionStream.Commit(write);
            foreach (var e in write.Events.Cast<CollectionEvent>())
            {
                _confirmed = _confirmed.Apply(e);
                _view = _view.Apply(e);
                foreach (var notice in EventNotices.After(e))
                    _events.Tell(notice);
            }
            _afterCollectionWrite?.Invoke();
            caller.Tell(new Done());
        }
        else
        {
            caller.Tell(new Refused(new QubesError($"Failed to record the change: {JournalStream.CauseOf(message)?.Message}")));
            if (outcome == WriteOutcome.Failed)
            {
                // Unknown outcome: the collection stream is re-read at the next start; until then refuse further global
                // changes (writing on would either collide with the stored event or leave a gap that breaks the chain).
                _collectionStreamUnknown = $"the outcome of an earlier write is unknown ({JournalStream.CauseOf(message)?.Message})";
            }
        }
        _afterCollectionWrite = null;
        Stash.UnstashAll();
    }

    private void OnMutation(object message)
    {
        var now = DateTimeOffset.UtcNow;
        switch (message)
        {
            case CreateQube c:
                // Every DispVM has a dispid, named ones too: it gives the 10.138 address.
                var namedDispId = c.Class == QubeClass.DispVM ? _view.NextDispId(Random.Shared.Next, now) : (int?)null;
                Create(CollectionRules.CreateQube(_view, c.Class, c.Name, c.Label, c.Template, c.Properties, c.Caller.Cause($"admin.vm.Create.{c.Class}"), now, Guid.NewGuid(), namedDispId)
                    with { Tags = [$"created-by-{c.Caller.Name}"] });
                break;
            case CreateDisposable d:
                var caller = _view.Get(d.Caller.Name);
                var baseName = d.Base == CollectionState.AdminName ? _view.Effective(caller, "default_dispvm") : d.Base;
                if (baseName is null)
                    throw new QubesValueError("Refusing to create disposable: no default_dispvm");
                var dispId = _view.NextDispId(Random.Shared.Next, now);
                Create(CollectionRules.CreateDisposable(_view, baseName, d.Caller.Name, d.Caller.Cause("admin.vm.CreateDisposable"), now, Guid.NewGuid(), dispId));
                break;
            case RemoveQube r:
                Remove(r.Name, r.Caller.Cause("admin.vm.Remove"));
                break;
            case CleanupDisposable c when _view.Find(c.Name) is { } disp && !disp.Power.IsActive():
                try
                {
                    // Nobody waits for this removal: its answer goes to the result log.
                    Remove(c.Name, EventCause.Supervisor("disposable stopped"), _results);
                }
                catch (QubesError e)
                {
                    _log.Warning("disposable {0} cannot be removed: {1}", c.Name, e.Message);
                }
                break;
            case CleanupDisposable:
                break;
            case SetProperty p:
                EnsureUsable(p.Name);
                var set = CollectionRules.SetProperty(_view, p.Name, p.Property, p.Value, p.Caller.Cause("admin.vm.property.Set"), now);
                BeginMutation(p.Name, [set], network: NetworkAfter(p.Name, set));
                break;
            case ResetProperty p:
                EnsureUsable(p.Name);
                var reset = CollectionRules.ResetProperty(_view, p.Name, p.Property, p.Caller.Cause("admin.vm.property.Reset"), now);
                BeginMutation(p.Name, [reset], network: NetworkAfter(p.Name, reset));
                break;
            case SetGlobalProperty g:
                var globalSet = CollectionRules.SetGlobal(_view, g.Property, g.Value, g.Caller.Cause("admin.property.Set"), now);
                PersistCollection(globalSet, () => AfterGlobalChange(g.Property));
                break;
            case ResetGlobalProperty g:
                var globalReset = CollectionRules.ResetGlobal(_view, g.Property, g.Caller.Cause("admin.property.Reset"), now);
                PersistCollection(globalReset, () => AfterGlobalChange(g.Property));
                break;
            case SetFeature f:
                EnsureUsable(f.Name);
                BeginMutation(f.Name, [CollectionRules.SetFeature(_view, f.Name, f.Feature, f.Value, f.Caller.Cause("admin.vm.feature.Set"), now, f.Internal)]);
                break;
            case RemoveFeature f:
                EnsureUsable(f.Name);
                BeginMutation(f.Name, [CollectionRules.RemoveFeature(_view, f.Name, f.Feature, f.Caller.Cause("admin.vm.feature.Remove"), now)]);
                break;
            case AddTag t:
                EnsureUsable(t.Name);
                if (CollectionRules.AddTag(_view, t.Name, t.Tag, t.Caller.Name, t.Caller.Cause("admin.vm.tag.Set"), now) is { } added)
                    BeginMutation(t.Name, [added]);
                else
                    Sender.Tell(new Done());
                break;
            case RemoveTag t:
                EnsureUsable(t.Name);
                BeginMutation(t.Name, [CollectionRules.RemoveTag(_view, t.Name, t.Tag, t.Caller.Name, t.Caller.Cause("admin.vm.tag.Remove"), now)]);
                break;
            case SetNotes n:
                EnsureUsable(n.Name);
                if (n.Notes.Length > 256000)
                    throw new ProtocolError("Notes too long");
                BeginMutation(n.Name, [new QubeNotesSet(n.Notes) { Time = now, Cause = n.Caller.Cause("admin.vm.notes.Set") }]);
                break;
            case SetFirewall f:
                EnsureUsable(f.Name);
                if (_view.Get(f.Name).Class == QubeClass.AdminVM)
                    throw new ProtocolError("Firewall rules are not supported for dom0");
                var rules = FirewallRuleSet.ParseRules(f.Rules);
                BeginMutation(f.Name, [new QubeFirewallSet([.. rules.Select(r => r.ToApiString())]) { Time = now, Cause = f.Caller.Cause("admin.vm.firewall.Set") }]);
                break;
            case CreateLabel l:
                PersistCollection(CollectionRules.CreateLabel(_view, l.Label, l.Color, l.Caller.Cause("admin.label.Create"), now), () => { });
                break;
            case RemoveLabel l:
                PersistCollection(CollectionRules.RemoveLabel(_view, l.Label, l.Caller.Cause("admin.label.Remove"), now), () => { });
                break;
            case AssignDevice a:
                EnsureUsable(a.Name);
                Assign(a, now);
                break;
            case UnassignDevice u:
                EnsureUsable(u.Name);
                var frontend = _view.Get(u.Name);
                var key = $"{u.DeviceClass}:{u.Device}";
                if (!frontend.Assignments.ContainsKey(key))
                    throw new DeviceNotAssigned($"{u.DeviceClass} device {u.Device} not assigned to {u.Name}");
                BeginMutation(u.Name, [new QubeDeviceUnassigned(u.DeviceClass, u.Device) { Time = now, Cause = u.Caller.Cause($"admin.vm.device.{u.DeviceClass}.Unassign") }]);
                break;
            case SetAssignmentMode m:
                EnsureUsable(m.Name);
                var mode = AssignmentModes.ParseForSetAssignment(m.Mode);
                if (!_view.Get(m.Name).Assignments.ContainsKey($"{m.DeviceClass}:{m.Device}"))
                    throw new DeviceNotAssigned($"{m.DeviceClass} device {m.Device} not assigned to {m.Name}");
                BeginMutation(m.Name, [new QubeDeviceAssignmentChanged(m.DeviceClass, m.Device, mode.ApiName()) { Time = now, Cause = m.Caller.Cause($"admin.vm.device.{m.DeviceClass}.Set.assignment") }]);
                break;
            case InitializeLayout l:
                InitializeLayout(l.Layout, Sender);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void EnsureUsable(string name)
    {
        _view.Get(name);
        if (_quarantined.TryGetValue(name, out var reason))
            throw new QubesVMError($"Qube {name} is quarantined: {reason}");
    }

    private void Create(QubeCreated created)
    {
        Spawn(new SpawnQube(QubeState.FromCreated(created), 0, ""));
        BeginMutation(created.Name, [created], created.Name);
    }

    private void Remove(string name, EventCause cause, IActorRef? caller = null)
    {
        EnsureUsable(name);
        CollectionRules.CheckRemove(_view, name, out var journalDetail);
        if (journalDetail is not null)
            _log.Error(journalDetail);
        _events.Tell(QubesEventNotice.Of("", "domain-pre-delete", ("vm", name)));
        BeginMutation(name, [new QubeRemoved { Time = DateTimeOffset.UtcNow, Cause = cause }], caller: caller);
    }

    private void Assign(AssignDevice a, DateTimeOffset now)
    {
        var frontend = _view.Get(a.Name);
        var mode = AssignmentModes.Parse(a.Mode);
        if (!mode.IsAssignable())
            throw new QubesValueError("Only auto-attachable devices can be assigned.");
        if (frontend.Assignments.ContainsKey($"{a.DeviceClass}:{a.Device}"))
            throw new DeviceAlreadyAssigned($"{a.DeviceClass} device {a.Device} already assigned to {a.Name}");
        BeginMutation(a.Name, [new QubeDeviceAssigned(a.DeviceClass, a.Device, mode.ApiName(), a.Options) { Time = now, Cause = a.Caller.Cause($"admin.vm.device.{a.DeviceClass}.Assign") }]);
    }

    /// <summary>A running qube whose effective netvm changes is re-plumbed live (§3.1).</summary>
    private NetworkChange? NetworkAfter(string name, QubeEvent e)
    {
        if (e is not (QubePropertySet { Property: "netvm" } or QubePropertyReset { Property: "netvm" }))
            return null;
        var qube = _view.Get(name);
        // A paused qube keeps its link until it is unpaused; SyncNetwork moves it then (§3.1).
        if (qube.Power is not (PowerState.Running or PowerState.Transient))
            return null;
        var after = _view.WithQube(qube.Apply(e));
        return new NetworkChange(after.Effective(after.Get(name), "netvm"));
    }

    private void AfterGlobalChange(string property)
    {
        if (property != "default_netvm")
            return;
        foreach (var qube in _view.Qubes.Values.Where(q => q.Power.IsActive() && !q.Properties.ContainsKey("netvm")))
            SyncNetwork(qube);
    }

    private void InitializeLayout(LayoutSpec layout, IActorRef replyTo)
    {
        if (_view.Qubes.Count > 1)
        {
            replyTo.Tell(new Refused(new QubesError("The collection is not empty")));
            return;
        }
        Context.ActorOf(Akka.Actor.Props.Create(() => new LayoutInitializer(Self, layout, replyTo)), "layout");
    }

    // ------------------------------------------------------------------ lifecycle

    private static bool IsLifecycle(IQubesCommand c) =>
        c is StartQube or ShutdownQube or KillQube or PauseQube or UnpauseQube or SuspendQube or ResumeQube or ResetFailed
            or AttachDevice or DetachDevice or ShutdownAll or PingQube or ReloadFirewall;

    private void OnLifecycle(IQubesCommand command)
    {
        switch (command)
        {
            case StartQube s:
                CancelRestart(s.Name);
                OnStart(s.Name, s.Caller.Cause("admin.vm.Start"), Sender);
                break;
            case ShutdownQube s:
                CancelRestart(s.Name);
                var qube = Usable(s.Name);
                if (qube.Class == QubeClass.AdminVM)
                    throw new QubesVMError("Cannot shutdown Dom0 fake domain!");
                if (!s.Force && qube.Power.IsActive() && _view.ProvidesNetwork(qube))
                {
                    var clients = ActiveClients(qube.Name);
                    if (clients.Count > 0)
                        throw new QubesVMInUseError($"There are other VMs connected to this VM: {string.Join(", ", clients)}");
                }
                var timeout = TimeSpan.FromSeconds(Math.Max(1, _view.EffectiveInt(qube, "shutdown_timeout")));
                ToActor(s.Name, new Shutdown(s.Force, s.Wait, timeout, s.Caller.Cause("admin.vm.Shutdown"), Sender));
                break;
            case KillQube k:
                CancelRestart(k.Name);
                if (Usable(k.Name).Class == QubeClass.AdminVM)
                    throw new QubesVMError("Cannot kill Dom0 fake domain!");
                ToActor(k.Name, new QubeProtocol.Kill(k.Caller.Cause("admin.vm.Kill"), Sender));
                break;
            case PauseQube p:
                if (Usable(p.Name).Class == QubeClass.AdminVM)
                    throw new QubesVMError("Cannot pause Dom0 fake domain!");
                ToActor(p.Name, new Pause(p.Caller.Cause("admin.vm.Pause"), Sender));
                break;
            case UnpauseQube u:
                if (Usable(u.Name).Class == QubeClass.AdminVM)
                    throw new QubesVMNotPausedError("Domain is not paused: 'dom0'");
                ToActor(u.Name, new Unpause(u.Caller.Cause("admin.vm.Unpause"), Sender, u.AcknowledgeWhenThawed));
                break;
            case SuspendQube s:
                if (Usable(s.Name).Class == QubeClass.AdminVM)
                    throw new QubesVMError("Cannot suspend Dom0 fake domain!");
                ToActor(s.Name, new Suspend(s.Caller.Cause("admin.vm.Suspend"), Sender));
                break;
            case ResumeQube r:
                if (Usable(r.Name).Class == QubeClass.AdminVM)
                    throw new QubesVMNotSuspendedError("Domain is not suspended: 'dom0'");
                ToActor(r.Name, new Resume(r.Caller.Cause("admin.vm.Resume"), Sender));
                break;
            case ResetFailed r:
                if (!Usable(r.Name).Failed)
                {
                    Sender.Tell(new Done());
                    break;
                }
                ToActor(r.Name, new PersistEvents([new QubeFailedReset { Time = DateTimeOffset.UtcNow, Cause = r.Caller.Cause("reset-failed") }], Sender));
                break;
            case PingQube p:
                Usable(p.Name);
                ToActor(p.Name, new Ping());
                break;
            case ReloadFirewall r:
                var reloaded = Usable(r.Name);
                _enforced.Remove(reloaded.Name);
                SyncFirewall(reloaded.Name);
                Sender.Tell(new Done());
                break;
            case AttachDevice a:
                OnAttach(a);
                break;
            case DetachDevice d:
                OnDetach(d);
                break;
            case ShutdownAll s:
                Context.ActorOf(Akka.Actor.Props.Create(() => new Teardown(Self, s.Force, s.Caller, Sender)));
                break;
        }
    }

    private void CancelRestart(string name)
    {
        if (_groupOf.TryGetValue(name, out var group))
            group.Tell(new CancelRestart(name));
    }

    private QubeState Usable(string name)
    {
        EnsureUsable(name);
        return _view.Get(name);
    }

    private List<string> ActiveClients(string netvm) =>
        // dom0 is never a client: its netvm value (inherited from default_netvm) means nothing to the network.
        [.. _view.Qubes.Values.Where(q => q.Name != netvm && q.Class != QubeClass.AdminVM && q.Power.IsActive()
                                          && (q.ConnectedNetVm == netvm || _view.Effective(q, "netvm") == netvm))
            .Select(q => q.Name).Order(StringComparer.Ordinal)];

    private void OnStart(string name, EventCause cause, IActorRef replyTo)
    {
        QubeState qube;
        try
        {
            qube = Usable(name);
        }
        catch (QubesError e)
        {
            replyTo.Tell(new Refused(e));
            return;
        }
        if (qube.Class == QubeClass.AdminVM)
        {
            // dom0 is always running: as a netvm it is "up"; as a target of admin.vm.Start it refuses.
            replyTo.Tell(cause.Kind == EventCause.AdminKind ? new Refused(new QubesVMNotHaltedError("Cannot start Dom0 fake domain!")) : new Done());
            return;
        }
        QubesError? refusal = null;
        if (qube.Features.TryGetValue("prohibit-start", out var rationale) && rationale.Length > 0)
            refusal = new QubesError($"Qube start is prohibited. Rationale: {rationale}");
        if (qube.Class.HasTemplate() && _view.TemplateOf(qube) is null)
            refusal ??= new QubesNoTemplateError($"Template of {name} is missing");
        // Required devices must be there to start; they are attached with the auto-attach ones once it runs.
        foreach (var assignment in qube.Assignments.Values.Where(a => a.Mode == "required"))
            if (FindDevice(assignment.DeviceClass, assignment.Device) is null)
                refusal ??= new QubesError($"{Capitalized(assignment.DeviceClass)} device {assignment.Device} not available");
        var netvm = _view.NetVmOf(qube) is { Class: not QubeClass.AdminVM } n ? n.Name : null;
        var spec = new DomainSpec(qube.Uuid, qube.Name, qube.Class, qube.Qid, _view.Effective(qube, "template"), netvm, Addressing.Ip(qube),
            _view.EffectiveInt(qube, "memory"), _view.EffectiveInt(qube, "maxmem"), _view.EffectiveInt(qube, "vcpus"), _view.ProvidesNetwork(qube),
            qube.DispId, RootTemplateOf(qube));
        ToActor(name, new Start(spec, netvm, refusal, cause, replyTo));
    }

    /// <summary>The TemplateVM at the end of a qube's template chain (none for a TemplateVM or StandaloneVM).</summary>
    private string? RootTemplateOf(QubeState qube)
    {
        var current = qube;
        for (var hops = 0; hops < 8 && current.Class.HasTemplate(); hops++)
        {
            if (_view.TemplateOf(current) is not { } template)
                return null;
            current = template;
        }
        return current.Class == QubeClass.TemplateVM && current != qube ? current.Name : null;
    }

    private static string Capitalized(string deviceClass) => DeviceClasses.TryParse(deviceClass, out var c) ? c.CapitalizedName() : deviceClass;

    private RestartSettings RestartSettingsOf(QubeState qube)
    {
        var type = _view.Effective(qube, "restart") switch
        {
            "permanent" => RestartType.Permanent,
            "transient" => RestartType.Transient,
            _ => RestartType.Temporary,
        };
        return RestartSettings.ServiceDefault with
        {
            Type = type,
            Intensity = Math.Max(0, _view.EffectiveInt(qube, "restart_intensity")),
            Period = TimeSpan.FromSeconds(Math.Max(1, _view.EffectiveInt(qube, "restart_period"))),
        };
    }

    private void OnEscalated(Escalated e)
    {
        _log.Error("qube {0} failed permanently: {1}", e.Name, e.Reason);
        _events.Tell(QubesEventNotice.Of(e.Name, "domain-restart-limit", ("reason", e.Reason)));
    }

    private void OnActorStopped(string name)
    {
        // A stop reported by a group the qube has since moved out of is the end of a handover, not a failure.
        if (!_view.Qubes.ContainsKey(name) || !_groupOf.TryGetValue(name, out var group) || !group.Equals(Sender) || _moving.ContainsKey(name))
            return;
        _groupOf.Remove(name);
        _quarantined = _quarantined.SetItem(name, "its actor failed repeatedly and was stopped");
        _log.Error("qube {0} quarantined: its actor failed repeatedly", name);
        // Changes it had not answered will not be answered by it: answer them here and take them out of the view.
        foreach (var (id, flight) in _inFlight.Where(f => f.Value.Qube == name).ToList())
            EndMutation(new MutationDone(id, new Refused(new QubesVMError($"Qube {name} is quarantined: its actor failed repeatedly"))));
    }

    // ------------------------------------------------------------------ consequences of a change

    private void OnQubeChanged(QubeChanged c)
    {
        var before = _view.Find(c.Name);
        _confirmed = c.State.Removed ? _confirmed with { Qubes = _confirmed.Qubes.Remove(c.Name) } : _confirmed.WithQube(c.State);
        if (c.State.Removed && c.State.DispId is { } dispId && c.Events.FirstOrDefault(e => e is QubeRemoved) is { } removed)
        {
            _confirmed = _confirmed.WithFreedDispId(dispId, removed.Time);
            _view = _view.WithFreedDispId(dispId, removed.Time);
        }
        Refresh(c.Name);
        if (c.State.Removed)
        {
            _groupOf.Remove(c.Name, out var group);
            group?.Tell(new StopQubeActor(c.Name));
            _enforced.Remove(c.Name);
            return;
        }
        MoveIfRegrouped(c.State);
        var wasActive = before?.Power.IsActive() ?? false;
        var isActive = c.State.Power.IsActive();
        var isUp = c.State.Power is PowerState.Running;

        // The qube's own link and its rules at its netvm.
        SyncNetwork(c.State);
        SyncFirewall(c.Name);
        // As a netvm: clients lose their link when it stops and get it back when it is up again.
        if (_view.ProvidesNetwork(c.State) && (wasActive != isActive || c.Events.Any(e => e is QubeStarted or QubeAdopted)))
            foreach (var client in _view.Qubes.Values.Where(q => q.Power.IsActive() && (q.ConnectedNetVm == c.Name || _view.Effective(q, "netvm") == c.Name)))
                SyncNetwork(client);
        if (!isActive)
            foreach (var key in _attaching.Where(a => a.Value == c.Name).Select(a => a.Key).ToList())
                _attaching.Remove(key);
        // As a device backend: devices go with it and come back with it.
        if (wasActive && !isActive)
            DevicesGone(c.Name);
        if (c.Events.Any(e => e is QubeStarted or QubeAdopted) && isUp)
        {
            ListDevices(c.Name);
            AutoAttach(c.State);
        }
        if (c.Events.Any(e => e is QubeDeviceAssigned or QubeDeviceAssignmentChanged) && isUp)
            AutoAttach(c.State);
        // Disposables are destroyed when they stop or fail to start (§3.4).
        if (c.State.Class == QubeClass.DispVM && !isActive
            && (c.Events.Any(e => e is QubeStartFailed) || c.Events.Any(e => e is QubeStopped) && _view.EffectiveBool(c.State, "auto_cleanup")))
            Self.Tell(new CleanupDisposable(c.Name));
    }

    /// <summary>
    /// A qube whose role changed (it now provides network, or got PCI devices of its own) moves under the right group
    /// supervisor: its actor hands its state over and stops, a new one starts in the new group, nothing is lost.
    /// </summary>
    private void MoveIfRegrouped(QubeState state)
    {
        if (_moving.ContainsKey(state.Name) || !_groupOf.TryGetValue(state.Name, out var current))
            return;
        var target = _groups[GroupFor(state)];
        if (target.Equals(current))
            return;
        ToActor(state.Name, new HandOver());
        _moving[state.Name] = [];
    }

    private void OnHandedOver(HandedOver h)
    {
        var name = h.State.Name;
        var group = _groups[GroupFor(h.State)];
        _groupOf[name] = group;
        group.Tell(new SpawnQube(h.State, h.SequenceNr, h.LastHash));
        if (!h.ClientFirewalls.IsEmpty)
            group.Tell(new ToQube(name, new EnforceFirewalls(h.ClientFirewalls)));
        _log.Info("qube {0} moved to {1}", name, group.Path.Name);
        if (_moving.Remove(name, out var waiting))
            foreach (var (message, sender) in waiting)
                group.Tell(new ToQube(name, message), sender);
    }

    /// <summary>Brings a qube's link in line with its effective netvm: none while that netvm is down or the qube paused.</summary>
    private void SyncNetwork(QubeState qube)
    {
        if (qube.Class == QubeClass.AdminVM || !qube.Power.IsActive() || qube.Power is PowerState.Transient or PowerState.Halting)
            return;
        var netvm = _view.NetVmOf(qube);
        var desired = netvm is not null && (netvm.Class == QubeClass.AdminVM || netvm.Power == PowerState.Running) ? netvm.Name : null;
        if (qube.ConnectedNetVm == desired)
            return;
        if (desired is not null && qube.Power is not PowerState.Running)
            return; // paused clients are re-attached when unpaused
        ToActor(qube.Name, new NetworkChange(desired));
    }

    /// <summary>Keeps the netvm that a client is connected to enforcing exactly that client's current rules.</summary>
    private void SyncFirewall(string client)
    {
        var qube = _view.Find(client);
        (string NetVm, ImmutableArray<string> Rules)? desired = null;
        if (qube is not null && qube.Power.IsActive() && qube.ConnectedNetVm is { } netvm)
            desired = (netvm, EnforcedRules(qube));
        _enforced.TryGetValue(client, out var current);
        var has = _enforced.ContainsKey(client);
        if (desired is null)
        {
            if (has)
            {
                ToActor(current.NetVm, new ForgetClientFirewall(client));
                _enforced.Remove(client);
            }
            return;
        }
        if (has && current.NetVm == desired.Value.NetVm && current.Rules.SequenceEqual(desired.Value.Rules))
            return;
        if (has && current.NetVm != desired.Value.NetVm)
            ToActor(current.NetVm, new ForgetClientFirewall(client));
        _enforced[client] = desired.Value;
        ToActor(desired.Value.NetVm, new EnforceClientFirewall(new ClientFirewall(client, Addressing.Ip(qube!), desired.Value.Rules)));
    }

    /// <summary>
    /// The rules a netvm enforces for a client: accept-all without custom rules, else the unexpired ones; a timer
    /// re-syncs when the earliest expiry passes (§4).
    /// </summary>
    private ImmutableArray<string> EnforcedRules(QubeState qube)
    {
        if (qube.Firewall is not { } lines)
            return ["action=accept"];
        var now = DateTimeOffset.UtcNow;
        var rules = lines.Select(FirewallRule.Parse).ToList();
        if (FirewallRuleSet.NextExpiry(rules, now) is { } next)
            Timers.StartSingleTimer($"firewall-expiry:{qube.Name}", new FirewallRuleExpired(qube.Name), next - now + TimeSpan.FromMilliseconds(10));
        return [.. FirewallRuleSet.Active(rules, now).Select(r => r.ToApiString())];
    }

    // ------------------------------------------------------------------ devices

    private void ListDevices(string backendName)
    {
        _backend.ListDevicesAsync(backendName, CancellationToken.None).PipeTo(Self, success: list => new DevicesListed(backendName, list));
    }

    private void OnDevicesListed(DevicesListed d)
    {
        if (d.Backend != CollectionState.AdminName && _view.Find(d.Backend) is not { Power: PowerState.Running })
            return;
        _available = _available.SetItem(d.Backend, [.. d.Devices]);
        if (d.Devices.Count == 0)
            return;
        foreach (var device in d.Devices)
            _events.Tell(QubesEventNotice.Of(d.Backend, $"device-added:{device.DeviceClass}", ("device", device.Address)));
        foreach (var frontend in _view.Qubes.Values.Where(q => q.Power == PowerState.Running && q.Assignments.Count > 0))
            AutoAttach(frontend);
    }

    private void OnBackendEvent(BackendEvent e)
    {
        switch (e)
        {
            case BackendEvent.DomainDied died:
                ToActor(died.Domain, new DomainDied(died.Crashed, died.Reason));
                break;
            case BackendEvent.DeviceAppeared appeared:
                _available = _available.SetItem(appeared.Domain, _available.GetValueOrDefault(appeared.Domain, []).Add(appeared.Device));
                _events.Tell(QubesEventNotice.Of(appeared.Domain, $"device-added:{appeared.Device.DeviceClass}", ("device", appeared.Device.Address)));
                foreach (var frontend in _view.Qubes.Values.Where(q => q.Power == PowerState.Running && q.Assignments.Count > 0))
                    AutoAttach(frontend);
                break;
            case BackendEvent.DeviceVanished vanished:
                _available = _available.SetItem(vanished.Domain, _available.GetValueOrDefault(vanished.Domain, []).Remove(vanished.Device));
                _events.Tell(QubesEventNotice.Of(vanished.Domain, $"device-removed:{vanished.Device.DeviceClass}", ("device", vanished.Device.Address)));
                DetachEverywhere(vanished.Device, $"device vanished from {vanished.Domain}");
                break;
        }
    }

    private void DevicesGone(string backendName)
    {
        if (!_available.TryGetValue(backendName, out var devices))
            return;
        _available = _available.Remove(backendName);
        foreach (var device in devices)
        {
            _events.Tell(QubesEventNotice.Of(backendName, $"device-removed:{device.DeviceClass}", ("device", device.Address)));
            DetachEverywhere(device, $"backend {backendName} stopped");
        }
    }

    private void DetachEverywhere(BackendDevice device, string reason)
    {
        var key = DeviceKey(device);
        var frontends = _view.Qubes.Values.Where(q => q.Attachments.ContainsKey(key)).Select(q => q.Name).ToHashSet(StringComparer.Ordinal);
        // An attach in flight (or one confirmed but not yet in the view) ends after this: its qube gets the detach
        // too, which waits behind the attach in that actor's stash (a detach of a device it does not hold is a no-op).
        if (_attaching.TryGetValue(key, out var attaching))
            frontends.Add(attaching);
        foreach (var frontend in frontends)
            ToActor(frontend, new DetachDeviceNow(device.DeviceClass, device, reason, EventCause.Supervisor(reason), null));
    }

    private BackendDevice? FindDevice(string deviceClass, string address) =>
        _available.Values.SelectMany(d => d).FirstOrDefault(d => d.DeviceClass == deviceClass && d.Address == address);

    /// <summary>Attached, or being attached: an attach in flight reserves the device so no second qube gets it.</summary>
    private bool AttachedAnywhere(BackendDevice device) =>
        _attaching.ContainsKey(DeviceKey(device)) || _view.Qubes.Values.Any(q => q.Attachments.ContainsKey(DeviceKey(device)));

    private static string DeviceKey(BackendDevice device) => $"{device.DeviceClass}:{device.Address}";

    private void SendAttach(string frontend, AttachDeviceNow attach)
    {
        _attaching[DeviceKey(attach.Device)] = frontend;
        ToActor(frontend, attach);
    }

    /// <summary>auto-attach (and required) assignments of a running frontend whose device is available and free.</summary>
    private void AutoAttach(QubeState frontend)
    {
        foreach (var assignment in frontend.Assignments.Values.Where(a => a.Mode is "auto-attach" or "required"))
            if (FindDevice(assignment.DeviceClass, assignment.Device) is { } device && !AttachedAnywhere(device))
                SendAttach(frontend.Name, new AttachDeviceNow(device, assignment.Mode, assignment.Options, EventCause.Supervisor("device assignment"), null));
    }

    private void OnAttach(AttachDevice a)
    {
        var frontend = Usable(a.Name);
        var device = FindDevice(a.DeviceClass, a.Device) ?? throw new ProtocolError($"Cannot attach unknown {a.DeviceClass} device.");
        var owner = _view.Qubes.Values.FirstOrDefault(q => q.Attachments.ContainsKey(DeviceKey(device)))?.Name
                    ?? _attaching.GetValueOrDefault(DeviceKey(device));
        if (owner is not null)
            throw new DeviceAlreadyAttached($"device {device.Address} of class {device.DeviceClass} already attached to {owner}");
        if (!frontend.Power.IsActive())
            throw new QubesVMNotRunningError("VM not running, cannot attach device, do you mean `assign`?");
        SendAttach(a.Name, new AttachDeviceNow(device, "manual", a.Options, a.Caller.Cause($"admin.vm.device.{a.DeviceClass}.Attach"), Sender));
    }

    private void OnDetach(DetachDevice d)
    {
        var frontend = Usable(d.Name);
        var key = $"{d.DeviceClass}:{d.Device}";
        if (!frontend.Attachments.ContainsKey(key))
            throw new DeviceNotAssigned($"{d.DeviceClass} device {d.Device} not attached to {d.Name}");
        if (frontend.Assignments.TryGetValue(key, out var a) && a.Mode == "required" && frontend.Power.IsActive())
            throw new QubesVMNotHaltedError("Can not detach a required device from a non halted qube. You need to unassign device first.");
        var device = FindDevice(d.DeviceClass, d.Device) ?? new BackendDevice(d.DeviceClass, d.Device.Split(':')[0], d.Device[(d.Device.IndexOf(':') + 1)..], "*", "");
        ToActor(d.Name, new DetachDeviceNow(d.DeviceClass, device, "detached", d.Caller.Cause($"admin.vm.device.{d.DeviceClass}.Detach"), Sender));
    }
}

/// <summary>Logs refusals of commands nobody waits for (autostart, supervisor restarts, disposable cleanup).</summary>
internal sealed class ResultLog : ReceiveActor
{
    public ResultLog()
    {
        var log = Context.GetLogger();
        Receive<Refused>(r => log.Warning("{0}: {1}", r.Error.QubesClassName, r.Error.Message));
        Receive<Done>(_ => { });
    }
}
