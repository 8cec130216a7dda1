using QubesActors.AdminApi.Wire;
using QubesActors.Core.Errors;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// Runs one framed call: resolves source and destination against a fresh snapshot, applies the table's
/// generic validation, runs the handler. Qubes errors become the reply; anything else propagates
/// (the server then aborts the connection without a response, as qubesd does).
/// </summary>
public sealed class AdminDispatcher(IQubesGateway qubes, MethodTable table, TimeSpan? commandTimeout = null)
{
    /// <summary>How long a mutation or lifecycle call may wait for the actors' answer (a waiting shutdown adds its shutdown_timeout).</summary>
    public TimeSpan CommandTimeout { get; } = commandTimeout ?? TimeSpan.FromMinutes(2);

    public MethodTable Table => table;

    public async Task<AdminReply> DispatchAsync(AdminRequest request, Caller transport, IFrameSink frames, CancellationToken ct)
    {
        try
        {
            var snapshot = await qubes.SnapshotAsync(ct).ConfigureAwait(false);
            var state = snapshot.State;
            // Upstream order: source, destination, then the method.
            var source = state.Find(request.Source) ?? throw new QubesVMNotFoundError(request.Source);
            var dest = state.Find(request.Dest) ?? throw new QubesVMNotFoundError(request.Dest);
            var method = table.Resolve(request.Method);
            MethodTable.Validate(method, request, dest);
            if (source.Class != Core.Model.QubeClass.AdminVM && qubes.Policy is { } policy)
                await AuthorizeByPolicy(policy, method, request, transport, snapshot.State, ct).ConfigureAwait(false);
            else
                MethodTable.Authorize(method, source, dest);
            var caller = transport with { Name = source.Name, Method = method.Name };
            return await method.Handler(new AdminCall(method, request, caller, dest, snapshot, qubes, frames, CommandTimeout), ct).ConfigureAwait(false);
        }
        catch (QubesError error)
        {
            return new AdminReply.Failed(error);
        }
    }

    /// <summary>
    /// A call from a qube is what qrexec relays: the policy decides it as qrexec would (service = method, argument,
    /// source, target = the destination as named; Qubes' admin rules redirect with <c>target=dom0</c>, so any allow
    /// counts). Decided against the snapshot the call was validated with; recorded like every decision.
    /// </summary>
    private static async Task AuthorizeByPolicy(IPolicyGateway policy, AdminMethod method, AdminRequest request, Caller transport,
        Core.Model.CollectionState state, CancellationToken ct)
    {
        var decision = await policy.EvaluateAsync(new Runtime.Policy.PolicyProtocol.EvaluatePolicy(
            Core.Policy.PolicyRequest.Of($"{method.Name}+{request.Arg}", request.Source, request.Dest),
            new Runtime.Policy.PolicyCallOptions(),
            $"admin-api {transport.Describe()}", state), ct).ConfigureAwait(false);
        if (!decision.Allowed)
            throw new PermissionDenied($"{method.Name} from {request.Source} to {request.Dest} denied by policy");
    }
}
