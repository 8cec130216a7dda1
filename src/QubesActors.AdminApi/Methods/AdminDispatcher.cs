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
            MethodTable.Authorize(method, source, dest);
            var caller = transport with { Name = source.Name, Method = method.Name };
            return await method.Handler(new AdminCall(method, request, caller, dest, snapshot, qubes, frames, CommandTimeout), ct).ConfigureAwait(false);
        }
        catch (QubesError error)
        {
            return new AdminReply.Failed(error);
        }
    }
}
