using System.Net;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// Pure planning of the Qubes-style network: which namespaces, links, addresses and routes the qubes get.
/// Nothing here touches the machine; <see cref="LinuxNetwork"/> applies the plans.
/// </summary>
public static class NetworkPlanner
{
    /// <summary>
    /// Plans every qube given. A netvm must be among them and provide network; loops are refused (fail closed:
    /// a plan that cannot be right is not applied at all).
    /// </summary>
    /// <param name="uplinkDns">Resolvers an edge netvm (one without a netvm) redirects the virtual DNS to; empty = none.</param>
    public static TopologyPlan Plan(IEnumerable<NetworkDomain> domains, NetworkNaming naming, IReadOnlyList<IPAddress>? uplinkDns = null)
    {
        ArgumentNullException.ThrowIfNull(domains);
        ArgumentNullException.ThrowIfNull(naming);
        var byName = new Dictionary<string, NetworkDomain>(StringComparer.Ordinal);
        var byKey = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var domain in domains)
        {
            if (!byName.TryAdd(domain.Name, domain))
                throw new NetworkPlanException($"qube {domain.Name} is given twice");
            // Two qubes with one key would share a namespace, an interface name and an address.
            if (!byKey.TryAdd(domain.Key, domain.Name))
                throw new NetworkPlanException($"qubes {byKey[domain.Key]} and {domain.Name} have the same id ({domain.Key})");
        }

        var ordered = new List<DomainNetworkPlan>(byName.Count);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var domain in byName.Values.OrderBy(d => d.Qid).ThenBy(d => d.DispId))
            Place(domain, byName, naming, uplinkDns ?? [], ordered, placed, new HashSet<string>(StringComparer.Ordinal));
        return new TopologyPlan(ordered);
    }

    private static void Place(
        NetworkDomain domain,
        Dictionary<string, NetworkDomain> byName,
        NetworkNaming naming,
        IReadOnlyList<IPAddress> uplinkDns,
        List<DomainNetworkPlan> ordered,
        HashSet<string> placed,
        HashSet<string> onPath)
    {
        if (placed.Contains(domain.Name))
            return;
        if (!onPath.Add(domain.Name))
            throw new NetworkPlanException($"netvm loop through {domain.Name}");
        NetworkDomain? netVm = null;
        if (domain.NetVm is { } netVmName)
        {
            if (!byName.TryGetValue(netVmName, out netVm))
                throw new NetworkPlanException($"netvm {netVmName} of {domain.Name} is not in the plan");
            Place(netVm, byName, naming, uplinkDns, ordered, placed, onPath);
        }
        ordered.Add(new DomainNetworkPlan(
            domain,
            naming.NamespaceOf(domain),
            domain.ProvidesNetwork ? PlanNetVm(domain, naming, uplinkDns) : null,
            netVm is null ? null : PlanLink(domain, netVm, naming)));
        placed.Add(domain.Name);
        onPath.Remove(domain.Name);
    }

    /// <summary>The link of one client to its netvm: what attaching or moving one qube needs.</summary>
    public static LinkPlan PlanLink(NetworkDomain client, NetworkDomain netVm, NetworkNaming naming)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(netVm);
        ArgumentNullException.ThrowIfNull(naming);
        if (!netVm.ProvidesNetwork)
            throw new NetworkPlanException($"{netVm.Name} is the netvm of {client.Name} but does not provide network");
        if (client.NetVm != netVm.Name)
            throw new NetworkPlanException($"{client.Name}'s netvm is {client.NetVm ?? "none"}, not {netVm.Name}");
        return new LinkPlan(
            client,
            naming.NamespaceOf(client),
            naming.NamespaceOf(netVm),
            NetworkNaming.VifOf(client),
            NetworkNaming.ClientInterface,
            client.Ip,
            Gateway: netVm.Ip, // Qubes: the client's gateway is its netvm's own address
            VirtualDns.Servers,
            NetworkNaming.ChainOf(client));
    }

    /// <param name="uplinkDns">Used only when the netvm has no netvm of its own (the edge, e.g. sys-net).</param>
    public static NetVmPlan PlanNetVm(NetworkDomain netVm, NetworkNaming naming, IReadOnlyList<IPAddress> uplinkDns)
    {
        ArgumentNullException.ThrowIfNull(netVm);
        ArgumentNullException.ThrowIfNull(uplinkDns);
        if (!netVm.ProvidesNetwork)
            throw new NetworkPlanException($"{netVm.Name} does not provide network");
        if (uplinkDns.Any(a => a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
            throw new NetworkPlanException("upstream DNS servers must be IPv4 addresses");
        var isEdge = netVm.NetVm is null;
        // Behind another netvm the virtual address travels on unchanged; the edge maps .1 and .2 onto its resolvers.
        IReadOnlyList<DnsRedirect> redirects = isEdge && uplinkDns.Count > 0
            ? VirtualDns.Servers.Select((v, i) => new DnsRedirect(v, uplinkDns[i % uplinkDns.Count])).ToList()
            : [];
        return new NetVmPlan(naming.NamespaceOf(netVm), netVm.Ip, redirects, DropVirtualDns: isEdge && uplinkDns.Count == 0);
    }

    /// <summary>The edge netvm's link to an uplink namespace: <c>up&lt;key&gt;</c> there, <c>eth0</c> in the netvm.</summary>
    public static UplinkPlan PlanUplink(NetworkDomain netVm, NetworkNaming naming, string uplinkNamespace, IPAddress uplinkAddress, IPAddress netVmAddress, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(netVm);
        ArgumentException.ThrowIfNullOrEmpty(uplinkNamespace);
        if (!netVm.ProvidesNetwork || netVm.NetVm is not null)
            throw new NetworkPlanException($"only a netvm without a netvm of its own owns an uplink, not {netVm.Name}");
        if (prefixLength is < 8 or > 30)
            throw new NetworkPlanException($"uplink prefix length must be 8-30, not {prefixLength}");
        return new UplinkPlan(uplinkNamespace, "up" + netVm.Key, naming.NamespaceOf(netVm), uplinkAddress, netVmAddress, prefixLength);
    }
}

/// <summary>A set of qubes whose network cannot be planned (missing or non-providing netvm, loop, duplicate).</summary>
public sealed class NetworkPlanException(string message) : Exception(message);
