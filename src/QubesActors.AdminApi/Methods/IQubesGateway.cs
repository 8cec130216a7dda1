using System.Threading.Channels;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Methods;

/// <summary>What the Admin API needs from the actor system: a view, commands, and the live events. Fakeable in tests.</summary>
public interface IQubesGateway
{
    Task<QubesProtocol.CollectionSnapshot> SnapshotAsync(CancellationToken ct);

    /// <summary>Sends a command; the answer is exactly one Done or Refused.</summary>
    Task<QubesProtocol.CommandResult> SendAsync(QubesProtocol.IQubesCommand command, TimeSpan timeout, CancellationToken ct);

    /// <summary>Subscribes to the event hub; events published after this returns are delivered.</summary>
    Task<IEventSubscription> SubscribeAsync(CancellationToken ct);

    /// <summary>The qrexec policy (/user/policy); null when this daemon serves none.</summary>
    IPolicyGateway? Policy => null;
}

/// <summary>What the Admin API asks the policy actor: its file operations, decisions and status.</summary>
public interface IPolicyGateway
{
    /// <summary>A <see cref="Runtime.Policy.PolicyProtocol"/> list/get/change message.</summary>
    Task<Runtime.Policy.PolicyProtocol.PolicyAdminReply> FilesAsync(object message, CancellationToken ct);

    Task<Runtime.Policy.PolicyOutcome> EvaluateAsync(Runtime.Policy.PolicyProtocol.EvaluatePolicy request, CancellationToken ct);

    Task<Runtime.Policy.PolicyProtocol.PolicyStatus> StatusAsync(CancellationToken ct);

    Task<Core.Policy.PolicyDecision> DryRunAsync(Runtime.Policy.PolicyProtocol.DryRunPolicy request, CancellationToken ct);
}

public interface IEventSubscription : IAsyncDisposable
{
    /// <summary>Completes with an error when the subscriber falls too far behind.</summary>
    ChannelReader<QubesEventNotice> Events { get; }
}
