using System.Net;
using QubesActors.Sandbox.Network;
using Xunit;

namespace QubesActors.Sandbox.Tests.Network;

public sealed class NetworkPlannerTests
{
    private static readonly NetworkNaming Naming = new("qa-");
    private static readonly NetworkDomain SysNet = new("sys-net", 2, providesNetwork: true);
    private static readonly NetworkDomain SysFirewall = new("sys-firewall", 3, netVm: "sys-net", providesNetwork: true);
    private static readonly NetworkDomain Work = new("work", 7, netVm: "sys-firewall");
    private static readonly NetworkDomain Vault = new("vault", 8);
    private static readonly NetworkDomain Disp = new("disp1234", 40, dispId: 1234, netVm: "sys-firewall");

    [Fact]
    public void Addresses_follow_qubes_qid_and_dispid_mapping()
    {
        Assert.Equal(IPAddress.Parse("10.137.0.7"), Work.Ip);
        Assert.Equal(IPAddress.Parse("10.138.4.218"), Disp.Ip); // (1234-1)/254 = 4, (1234-1)%254+1 = 218
        Assert.Equal(IPAddress.Parse("10.137.1.1"), new NetworkDomain("big", 255).Ip);
    }

    [Fact]
    public void Names_are_short_stable_and_valid_interface_names()
    {
        var biggest = new NetworkDomain("d", 1, dispId: NetworkDomain.MaxId, netVm: "x");
        Assert.Equal("qa-q7", Naming.NamespaceOf(Work));
        Assert.Equal("vifq7", NetworkNaming.VifOf(Work));
        Assert.Equal("vifd1234", NetworkNaming.VifOf(Disp));
        Assert.Equal("qbs-q7", NetworkNaming.ChainOf(Work));
        Assert.True(NetworkNaming.VifOf(biggest).Length <= NetworkNaming.MaxInterfaceName);
        Assert.True(Naming.Owns("qa-q7"));
        Assert.False(Naming.Owns("other"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("Qa-")]
    [InlineData("qa/")]
    [InlineData("q a")]
    public void Bad_prefixes_are_refused(string prefix) =>
        Assert.Throws<ArgumentException>(() => new NetworkNaming(prefix));

    [Fact]
    public void Netvms_come_before_their_clients_and_links_point_to_the_netvm_address()
    {
        var plan = NetworkPlanner.Plan([Work, Disp, Vault, SysFirewall, SysNet], Naming);
        var order = plan.Domains.Select(d => d.Domain.Name).ToList();
        Assert.True(order.IndexOf("sys-net") < order.IndexOf("sys-firewall"));
        Assert.True(order.IndexOf("sys-firewall") < order.IndexOf("work"));
        Assert.True(order.IndexOf("sys-firewall") < order.IndexOf("disp1234"));

        var work = plan["work"].Link!;
        Assert.Equal("qa-q3", work.NetVmNamespace);
        Assert.Equal("qa-q7", work.ClientNamespace);
        Assert.Equal(IPAddress.Parse("10.137.0.3"), work.Gateway);
        Assert.Equal(IPAddress.Parse("10.137.0.7"), work.ClientIp);
        Assert.Equal("eth0", work.ClientInterface);
        Assert.Equal([IPAddress.Parse("10.139.1.1"), IPAddress.Parse("10.139.1.2")], work.Dns);

        Assert.Equal(IPAddress.Parse("10.137.0.2"), plan["sys-firewall"].Link!.Gateway);
        Assert.NotNull(plan["sys-firewall"].NetVm);
        Assert.Null(plan["work"].NetVm);
    }

    [Fact]
    public void A_qube_without_netvm_gets_a_namespace_but_no_link()
    {
        var plan = NetworkPlanner.Plan([Vault], Naming);
        Assert.Equal("qa-q8", plan["vault"].Namespace);
        Assert.Null(plan["vault"].Link);
        Assert.Null(plan["vault"].NetVm);
    }

    [Fact]
    public void Only_the_edge_netvm_redirects_dns_to_the_uplink_resolvers()
    {
        var upstream = new[] { IPAddress.Parse("192.168.201.10") };
        var plan = NetworkPlanner.Plan([SysNet, SysFirewall], Naming, upstream);
        var edge = plan["sys-net"].NetVm!;
        Assert.Equal(2, edge.DnsRedirects.Count);
        Assert.All(edge.DnsRedirects, r => Assert.Equal(upstream[0], r.Upstream));
        Assert.Equal([IPAddress.Parse("10.139.1.1"), IPAddress.Parse("10.139.1.2")], edge.DnsRedirects.Select(r => r.Virtual));
        Assert.False(edge.DropVirtualDns);
        Assert.Empty(plan["sys-firewall"].NetVm!.DnsRedirects);
        Assert.False(plan["sys-firewall"].NetVm!.DropVirtualDns);
    }

    [Fact]
    public void An_edge_netvm_without_resolvers_drops_virtual_dns()
    {
        var plan = NetworkPlanner.Plan([SysNet], Naming);
        Assert.True(plan["sys-net"].NetVm!.DropVirtualDns);
        Assert.Empty(plan["sys-net"].NetVm!.DnsRedirects);
    }

    [Fact]
    public void Missing_netvm_is_refused() =>
        Assert.Contains("not in the plan", Assert.Throws<NetworkPlanException>(() => NetworkPlanner.Plan([Work], Naming)).Message);

    [Fact]
    public void Netvm_that_does_not_provide_network_is_refused()
    {
        var client = new NetworkDomain("c", 9, netVm: "vault");
        Assert.Contains("does not provide network", Assert.Throws<NetworkPlanException>(() => NetworkPlanner.Plan([client, Vault], Naming)).Message);
    }

    [Fact]
    public void Netvm_loops_are_refused()
    {
        var a = new NetworkDomain("a", 10, netVm: "b", providesNetwork: true);
        var b = new NetworkDomain("b", 11, netVm: "a", providesNetwork: true);
        Assert.Contains("loop", Assert.Throws<NetworkPlanException>(() => NetworkPlanner.Plan([a, b], Naming)).Message);
    }

    [Fact]
    public void Duplicate_ids_are_refused()
    {
        var twin = new NetworkDomain("twin", 7);
        Assert.Contains("same id", Assert.Throws<NetworkPlanException>(() => NetworkPlanner.Plan([Vault, Work, twin, SysFirewall, SysNet], Naming)).Message);
    }

    [Fact]
    public void Link_to_a_netvm_that_is_not_the_clients_is_refused() =>
        Assert.Throws<NetworkPlanException>(() => NetworkPlanner.PlanLink(Work, SysNet, Naming));

    [Fact]
    public void Uplink_belongs_to_the_edge_netvm_only()
    {
        var uplink = NetworkPlanner.PlanUplink(SysNet, Naming, "t-up", IPAddress.Parse("192.168.200.1"), IPAddress.Parse("192.168.200.2"), 24);
        Assert.Equal("upq2", uplink.UplinkInterface);
        Assert.Equal("qa-q2", uplink.NetVmNamespace);
        Assert.Throws<NetworkPlanException>(() =>
            NetworkPlanner.PlanUplink(SysFirewall, Naming, "t-up", IPAddress.Parse("192.168.200.1"), IPAddress.Parse("192.168.200.2"), 24));
    }
}
