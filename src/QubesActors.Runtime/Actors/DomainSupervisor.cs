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

    public DomainSupervisor(IDomainBackend backend, IActorRef events, IActorRef journal, Func<double> jitter)
    {
        _jitter = jitter;
        Receive<SpawnQube>(s =>
        {
            var child = Context.Child(s.State.Name);
            if (!child.IsNobody())
                return;
            Context.Watch(Context.ActorOf(QubeActor.Props(s.State, s.SequenceNr, s.LastHash, backend, Context.Parent, events, journal), s.State.Name));
        });
        Receive<ToQube>(m =>
        {
            var child = Context.Child(m.Name);
            if (child.IsNobody())
                Sender.Tell(new QubesProtocol.Refused(new Core.Errors.QubesVMError($"Qube {m.Name} has no running actor")));
            else
                child.Forward(m.Message);
        });
        Receive<StopQubeActor>(s =>
        {
            Timers.Cancel(s.Name);
            var child = Context.Child(s.Name);
            if (!child.IsNobody())
            {
                Context.Unwatch(child);
                Context.Stop(child);
            }
        });
        Receive<StoppedUnasked>(OnStoppedUnasked);
        Receive<RestartDue>(r => Context.Parent.Tell(r));
        Receive<Terminated>(t => Context.Parent.Tell(new QubeActorStopped(t.ActorRef.Path.Name)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

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

    /// <summary>Actor exceptions restart the actor (it recovers from the journal); past 10 a minute it is stopped and quarantined.</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(10, TimeSpan.FromMinutes(1), ex => Directive.Restart);
}
