using Akka.Actor;

namespace QubesActors.Runtime.Actors;

/// <summary>Fans live events out to subscribers (admin.Events connections, the shell, tests).</summary>
public sealed class EventHub : ReceiveActor
{
    public sealed record Subscribe(IActorRef Subscriber);
    public sealed record Unsubscribe(IActorRef Subscriber);
    public sealed record Subscribed;

    private readonly HashSet<IActorRef> _subscribers = [];

    public EventHub()
    {
        Receive<Subscribe>(s =>
        {
            if (_subscribers.Add(s.Subscriber))
                Context.Watch(s.Subscriber);
            Sender.Tell(new Subscribed());
        });
        Receive<Unsubscribe>(u =>
        {
            _subscribers.Remove(u.Subscriber);
            Context.Unwatch(u.Subscriber);
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
        Receive<QubesEventNotice>(e =>
        {
            foreach (var s in _subscribers)
                s.Tell(e);
        });
    }
}
