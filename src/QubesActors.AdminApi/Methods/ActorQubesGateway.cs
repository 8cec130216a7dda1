using System.Threading.Channels;
using Akka.Actor;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Methods;

/// <summary>The gateway over the running actor tree: /user/qubes and /user/events.</summary>
public sealed class ActorQubesGateway(ActorSystem system, IActorRef qubes, IActorRef events) : IQubesGateway
{
    /// <summary>Events a subscriber may lag behind before its stream is closed (a stuck client never holds the hub).</summary>
    public int EventBacklog { get; init; } = 10_000;

    public TimeSpan SnapshotTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>/user/policy when the daemon has one.</summary>
    public IActorRef? PolicyActor { get; init; }

    public IPolicyGateway? Policy => PolicyActor is { } actor ? new ActorPolicyGateway(actor, SnapshotTimeout) : null;

    public Task<QubesProtocol.CollectionSnapshot> SnapshotAsync(CancellationToken ct) =>
        qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), SnapshotTimeout, ct);

    public Task<QubesProtocol.CommandResult> SendAsync(QubesProtocol.IQubesCommand command, TimeSpan timeout, CancellationToken ct) =>
        qubes.Ask<QubesProtocol.CommandResult>(command, timeout, ct);

    public async Task<IEventSubscription> SubscribeAsync(CancellationToken ct)
    {
        var channel = Channel.CreateBounded<QubesEventNotice>(new BoundedChannelOptions(EventBacklog)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var forwarder = system.ActorOf(Props.Create(() => new Forwarder(channel.Writer)));
        try
        {
            await events.Ask<EventHub.Subscribed>(new EventHub.Subscribe(forwarder), SnapshotTimeout, ct).ConfigureAwait(false);
        }
        catch
        {
            system.Stop(forwarder);
            throw;
        }
        return new Subscription(channel.Reader, () =>
        {
            events.Tell(new EventHub.Unsubscribe(forwarder));
            system.Stop(forwarder);
        });
    }

    private sealed class Subscription(ChannelReader<QubesEventNotice> reader, Action dispose) : IEventSubscription
    {
        public ChannelReader<QubesEventNotice> Events => reader;

        public ValueTask DisposeAsync()
        {
            dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Moves notices from the hub into the connection's channel without ever blocking the hub.</summary>
    private sealed class Forwarder : ReceiveActor
    {
        private readonly ChannelWriter<QubesEventNotice> _writer;

        public Forwarder(ChannelWriter<QubesEventNotice> writer)
        {
            _writer = writer;
            Receive<QubesEventNotice>(notice =>
            {
                if (!writer.TryWrite(notice))
                {
                    writer.TryComplete(new InvalidOperationException("event subscriber fell too far behind"));
                    Context.Stop(Self);
                }
            });
        }

        /// <summary>Ends the stream when the subscription or the actor system goes away.</summary>
        protected override void PostStop() => _writer.TryComplete();
    }
}

/// <summary>The policy actor behind <see cref="IPolicyGateway"/>.</summary>
public sealed class ActorPolicyGateway(IActorRef policy, TimeSpan timeout) : IPolicyGateway
{
    public Task<Runtime.Policy.PolicyProtocol.PolicyAdminReply> FilesAsync(object message, CancellationToken ct) =>
        policy.Ask<Runtime.Policy.PolicyProtocol.PolicyAdminReply>(message, timeout, ct);

    public Task<Runtime.Policy.PolicyOutcome> EvaluateAsync(Runtime.Policy.PolicyProtocol.EvaluatePolicy request, CancellationToken ct) =>
        policy.Ask<Runtime.Policy.PolicyOutcome>(request, timeout, ct);

    public Task<Runtime.Policy.PolicyProtocol.PolicyStatus> StatusAsync(CancellationToken ct) =>
        policy.Ask<Runtime.Policy.PolicyProtocol.PolicyStatus>(new Runtime.Policy.PolicyProtocol.GetPolicyStatus(), timeout, ct);

    public Task<Core.Policy.PolicyDecision> DryRunAsync(Runtime.Policy.PolicyProtocol.DryRunPolicy request, CancellationToken ct) =>
        policy.Ask<Core.Policy.PolicyDecision>(request, timeout, ct);
}
