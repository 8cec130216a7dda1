using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Threading.Channels;
using QubesActors.AdminApi.Methods;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;

namespace QubesActors.IntegrationTests;

/// <summary>A gateway over a fixed collection: records the commands it is sent and answers them with <see cref="Answer"/>.</summary>
internal sealed class FakeGateway : IQubesGateway
{
    private readonly Channel<QubesEventNotice> _events = Channel.CreateUnbounded<QubesEventNotice>();

    public CollectionState State { get; set; } = Sample();
    public ConcurrentQueue<QubesProtocol.IQubesCommand> Commands { get; } = new();
    public Func<QubesProtocol.IQubesCommand, QubesProtocol.CommandResult> Answer { get; set; } = _ => new QubesProtocol.Done();
    public TaskCompletionSource Subscribed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static CollectionState Sample()
    {
        var template = new QubeState { Uuid = Guid.Parse("11111111-1111-1111-1111-111111111111"), Name = "debian-13", Class = QubeClass.TemplateVM, Qid = 1, Label = "black" };
        var net = new QubeState
        {
            Uuid = Guid.Parse("22222222-2222-2222-2222-222222222222"), Name = "sys-net", Class = QubeClass.AppVM, Qid = 2, Label = "red", Power = PowerState.Running,
            Properties = ImmutableSortedDictionary<string, string>.Empty.Add("template", "debian-13").Add("provides_network", "True").Add("netvm", "").Add("memory", "300"),
        };
        var work = new QubeState
        {
            Uuid = Guid.Parse("33333333-3333-3333-3333-333333333333"), Name = "work", Class = QubeClass.AppVM, Qid = 3, Label = "blue",
            Properties = ImmutableSortedDictionary<string, string>.Empty.Add("template", "debian-13"),
            Features = ImmutableSortedDictionary<string, string>.Empty.Add("gui", "1").Add("os", "Linux"),
            Tags = ["created-by-dom0", "work-tag"],
        };
        var state = CollectionState.Empty.WithQube(template).WithQube(net).WithQube(work);
        return state with { Globals = state.Globals.Add("default_netvm", "sys-net").Add("default_template", "debian-13") };
    }

    public Task<QubesProtocol.CollectionSnapshot> SnapshotAsync(CancellationToken ct) =>
        Task.FromResult(new QubesProtocol.CollectionSnapshot(State, ImmutableSortedDictionary<string, string>.Empty,
            ImmutableDictionary<string, ImmutableArray<BackendDevice>>.Empty, true));

    public Task<QubesProtocol.CommandResult> SendAsync(QubesProtocol.IQubesCommand command, TimeSpan timeout, CancellationToken ct)
    {
        Commands.Enqueue(command);
        return Task.FromResult(Answer(command));
    }

    public void Publish(QubesEventNotice notice) => _events.Writer.TryWrite(notice);

    public Task<IEventSubscription> SubscribeAsync(CancellationToken ct)
    {
        Subscribed.TrySetResult();
        return Task.FromResult<IEventSubscription>(new Subscription(_events.Reader));
    }

    private sealed class Subscription(ChannelReader<QubesEventNotice> reader) : IEventSubscription
    {
        public ChannelReader<QubesEventNotice> Events => reader;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
