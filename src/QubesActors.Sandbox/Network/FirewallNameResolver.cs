using System.Net;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// Resolves the DNS names of a qube's rules when they are applied (as upstream: not per connection), through a
/// resolver the caller chooses (the system resolver in the daemon, a table in tests).
/// </summary>
public static class FirewallNameResolver
{
    /// <summary>The system resolver (<see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/>).</summary>
    public static readonly Func<string, CancellationToken, Task<IReadOnlyList<IPAddress>>> SystemResolver =
        async (name, ct) => await Dns.GetHostAddressesAsync(name, ct).ConfigureAwait(false);

    /// <summary>
    /// Resolves every name; a name that fails or times out is left out of the result, which makes the compiler
    /// fail the client's chain closed rather than silently skip a rule.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, IReadOnlyList<IPAddress>>> ResolveAsync(
        IEnumerable<string> names,
        Func<string, CancellationToken, Task<IReadOnlyList<IPAddress>>> resolver,
        TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(resolver);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var lookups = names.Distinct(StringComparer.Ordinal).Select(async name =>
        {
            try
            {
                return (name, addresses: await resolver(name, limit.Token).ConfigureAwait(false));
            }
            catch (Exception e) when (e is global::System.Net.Sockets.SocketException or OperationCanceledException or ArgumentException
                                      && !cancellationToken.IsCancellationRequested)
            {
                return (name, addresses: (IReadOnlyList<IPAddress>?)null);
            }
        }).ToList();
        var results = await Task.WhenAll(lookups).ConfigureAwait(false);
        return results.Where(r => r.addresses is { Count: > 0 })
            .ToDictionary(r => r.name, r => r.addresses!, StringComparer.Ordinal);
    }
}
