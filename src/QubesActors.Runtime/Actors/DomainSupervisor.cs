using Akka.Actor;
using Akka.Event;
using QubesActors.Core.Events;
using QubesActors.Core.Rules;
using QubesActors.Runtime.Backend;
using static QubesActors.Runtime.Actors.QubeProtocol;

namespace QubesActors.Runtime.Actors;

/// <summary>
/// Parent of one group of qube actors (services, apps, disposables, admin). Two kinds of failure, kept apart:
/// an actor that throws is restarted by Akka (it recovers from the journal, the domain is not touched); a domain
/// that dies is handled here by the qube's restart policy (type, intensity, backoff, escalation).
/// </summary>
public sealed class DomainSupervisor : ReceiveActor, IWithTimers
{
    public sealed record QubeActorStopped(string Name);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Func<double> _jitter;
    /// <summary>
    /// Children asked to stop that have not terminated yet, with the messages for a new actor of the same name
    /// (a qube removed, or whose creation failed, and created again at once): Akka refuses the name until the old
    /// actor is gone, so they wait for its Terminated.
    /// </summary>
    private readonly Dictionary<string, List<(object Message, IActorRef Sender)>> _stopping = new(StringComparer.Ordinal);

    public DomainSupervisor(IDomainBackend backend, IActorRef events, IActorRef journal, Func<double> jitter)
    {
        _jitter = jitter;
        Receive<SpawnQube>(s =>
        {
            if (Deferred(s.State.Name, s))
                return;
            var child = Context.Child(s.State.Name);
            if (!child.IsNobody())
                return;
            Context.Watch(Context.ActorOf(QubeActor.Props(s.State, s.SequenceNr, s.LastHash, backend, Context.Parent, events, journal), s.State.Name));
        });
        Receive<ToQube>(m =>
        {
            if (Deferred(m.Name, m))
                return;
            var child = Context.Child(m.Name);
            if (child.IsNobody())
            {
                var refused = new QubesProtocol.Refused(new Core.Errors.QubesVMError($"Qube {m.Name} has no running actor"));
                // A change in flight is answered where the collection tracks it, or it would wait forever.
                if (m.Message is PersistEvents { MutationId: not 0 } p)
                    p.ReplyTo.Tell(new MutationDone(p.MutationId, refused));
                else
                    Sender.Tell(refused);
            }
            else
                child.Forward(m.Message);
        });
        Receive<StopQubeActor>(s =>
        {
            Timers.Cancel(s.Name);
            var child = Context.Child(s.Name);
            if (!child.IsNobody() && !_stopping.ContainsKey(s.Name))
            {
                _stopping[s.Name] = [];
                Context.Stop(child);
            }
        });
        Receive<StoppedUnasked>(OnStoppedUnasked);
        Receive<RestartDue>(r => Context.Parent.Tell(r));
        // An administrator's start, shutdown or kill supersedes a pending restart (as systemd's manual stop does).
        Receive<CancelRestart>(c => Timers.Cancel(c.Name));
        Receive<Terminated>(t =>
        {
            var name = t.ActorRef.Path.Name;
            if (_stopping.Remove(name, out var waiting))
            {
                foreach (var (message, sender) in waiting)
                    Self.Tell(message, sender);
                return;
            }
            Context.Parent.Tell(new QubeActorStopped(name));
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private bool Deferred(string name, object message)
    {
        if (!_stopping.TryGetValue(name, out var waiting))
            return false;
        waiting.Add((message, Sender));
        return true;
    }

    public static Props Props(IDomainBackend backend, IActorRef events, IActorRef journal, Func<double>? jitter = null) =>
        Akka.Actor.Props.Create(() => new DomainSupervisor(backend, events, journal, jitter ?? Random.Shared.NextDouble));

    private void OnStoppedUnasked(StoppedUnasked s)
    {
        var name = s.State.Name;
        var settings = s.Settings ?? RestartSettings.AppDefault;
        var decision = RestartPolicy.Decide(s.State, settings, s.Kind, DateTimeOffset.UtcNow, _jitter());
        switch (decision)
        {
            case RestartDecision.RestartAfter r:
                _log.Info("qube {0} stopped ({1}); restart {2} in {3:0.0}s", name, s.Kind, r.Attempt, r.Delay.TotalSeconds);
                Sender.Tell(new RecordRestart(r.Attempt, r.Delay, settings.Type));
                Timers.StartSingleTimer(name, new RestartDue(name, r.Attempt), r.Delay);
                break;
            case RestartDecision.GiveUp g:
                _log.Error("qube {0}: {1}; marked failed, escalating", name, g.Reason);
                Sender.Tell(new MarkFailed(g.Reason));
                Context.Parent.Tell(new Escalated(name, g.Reason));
                break;
            case RestartDecision.LeaveDown l:
                _log.Info("qube {0} stopped ({1}); not restarted: {2}", name, s.Kind, l.Reason);
                break;
        }
    }

    /// <summary>
    /// Actor exceptions restart the actor (it recovers from the journal, after a pause so that a journal outage is
    /// ridden out); past 20 in 10 minutes it is stopped and its qube quarantined.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(20, TimeSpan.FromMinutes(10), ex => Directive.Restart);
}
