using System.Net;

namespace QubesActors.Sandbox.Network;

/// <summary>The two virtual DNS addresses every networked qube is given, as in Qubes.</summary>
public static class VirtualDns
{
    public static readonly IPAddress Primary = IPAddress.Parse("10.139.1.1");
    public static readonly IPAddress Secondary = IPAddress.Parse("10.139.1.2");
    public static readonly IReadOnlyList<IPAddress> Servers = [Primary, Secondary];

    /// <summary>A qube's <c>/etc/resolv.conf</c>: it asks its netvm at the virtual addresses.</summary>
    public static string ResolvConf => string.Concat(Servers.Select(s => $"nameserver {s}\n"));
    public const int Port = 53;
}

/// <summary>
/// A netvm turns a client's virtual DNS address into this upstream resolver (DNAT). A netvm that itself has a
/// netvm redirects nowhere: the virtual address is forwarded as is and its own netvm redirects it.
/// </summary>
public sealed record DnsRedirect(IPAddress Virtual, IPAddress Upstream);

/// <summary>How one network-providing qube's namespace is set up: forwarding, masquerade outwards, DNS redirection.</summary>
/// <param name="DropVirtualDns">
/// True for a netvm at the edge (no netvm of its own) with no upstream resolver configured: DNS to the virtual
/// addresses is dropped there instead of being routed out with an address that means nothing outside.
/// </param>
public sealed record NetVmPlan(string Namespace, IPAddress Ip, IReadOnlyList<DnsRedirect> DnsRedirects, bool DropVirtualDns);

/// <summary>
/// One client joined to its netvm by a veth pair: <see cref="VifName"/> in the netvm's namespace (holding the
/// netvm's own address, as Qubes' vif interfaces do), <see cref="ClientInterface"/> in the client's, with the
/// client's address as a /32 and its default route to the netvm's address.
/// </summary>
public sealed record LinkPlan(
    NetworkDomain Client,
    string ClientNamespace,
    string NetVmNamespace,
    string VifName,
    string ClientInterface,
    IPAddress ClientIp,
    IPAddress Gateway,
    IReadOnlyList<IPAddress> Dns,
    string ChainName);

/// <summary>
/// The edge netvm's link to "the outside world": a namespace that stands for the uplink (in tests, one the test
/// created). A small subnet between the two ends; the netvm routes everything there by default.
/// </summary>
public sealed record UplinkPlan(
    string UplinkNamespace,
    string UplinkInterface,
    string NetVmNamespace,
    IPAddress UplinkAddress,
    IPAddress NetVmAddress,
    int PrefixLength);

/// <summary>One qube's part of the topology. <see cref="NetVm"/> is set when it provides network, <see cref="Link"/> when it has a netvm.</summary>
public sealed record DomainNetworkPlan(NetworkDomain Domain, string Namespace, NetVmPlan? NetVm, LinkPlan? Link);

/// <summary>Every qube's plan, ordered so that a netvm always comes before its clients.</summary>
public sealed record TopologyPlan(IReadOnlyList<DomainNetworkPlan> Domains)
{
    public DomainNetworkPlan this[string name] =>
        Domains.FirstOrDefault(d => d.Domain.Name == name) ?? throw new KeyNotFoundException($"no qube {name} in the plan");
}
