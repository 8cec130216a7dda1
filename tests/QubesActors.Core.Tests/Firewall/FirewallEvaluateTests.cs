using System.Net;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>Rule semantics: first match decides, fixed drop after the list (docs §4, §10 item 8).</summary>
public class FirewallEvaluateTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    private static readonly IPAddress DnsServer = IPAddress.Parse("10.139.1.1");
    private static readonly IPAddress[] DnsServers = [DnsServer, IPAddress.Parse("10.139.1.2")];
    private static readonly IPAddress Web = IPAddress.Parse("93.184.216.34");

    private static FirewallAction Evaluate(string payload, FirewallPacket packet,
        Func<string, IEnumerable<IPAddress>>? resolve = null) =>
        FirewallRuleSet.Evaluate(FirewallRuleSet.ParseRules(payload), packet, Now, DnsServers, resolve);

    public static TheoryData<FirewallPacket> AnyPackets => new()
    {
        FirewallPacket.Tcp(Web, 443),
        FirewallPacket.Udp(DnsServer, 53),
        FirewallPacket.Icmp(IPAddress.Parse("2001:db8::1"), 128),
        FirewallPacket.Tcp(IPAddress.IPv6Loopback, 0),
    };

    [Theory]
    [MemberData(nameof(AnyPackets))]
    public void Default_rules_must_accept_everything(FirewallPacket packet)
    {
        Assert.Equal(FirewallAction.Accept, FirewallRuleSet.Evaluate(FirewallRules.Default, packet, Now, DnsServers));
    }

    [Theory]
    [MemberData(nameof(AnyPackets))]
    public void Empty_rules_must_drop_everything(FirewallPacket packet)
    {
        Assert.Equal(FirewallAction.Drop, FirewallRuleSet.Evaluate(FirewallRules.Empty, packet, Now, DnsServers));
    }

    [Fact]
    public void First_matching_rule_must_decide()
    {
        const string rules = "action=drop proto=tcp dstports=22\naction=accept proto=tcp\naction=drop\n";

        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Tcp(Web, 22)));
        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(Web, 23)));
    }

    [Fact]
    public void Packets_matching_no_rule_must_be_dropped()
    {
        const string rules = "action=accept proto=tcp dstports=1-1024\n";

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(Web, 1)));
        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(Web, 1024)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Tcp(Web, 1025)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Tcp(Web, 0)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Udp(Web, 80)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Icmp(Web, 8)));
    }

    [Fact]
    public void No_icmp_rule_must_drop_icmp_of_any_type_only()
    {
        const string rules = "action=drop proto=icmp comment=No ICMP\naction=accept\n";

        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Icmp(Web, 8)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Icmp(Web, 0)));
        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(Web, 80)));
    }

    [Fact]
    public void Icmptype_must_match_only_that_type()
    {
        const string rules = "action=accept proto=icmp icmptype=8\n";

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Icmp(Web, 8)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Icmp(Web, 0)));
    }

    [Fact]
    public void Address_rules_must_match_by_network_and_family()
    {
        const string rules = "action=accept dst4=10.0.0.0/8\naction=accept dst6=2001:db8::/32 proto=tcp\n";

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Udp(IPAddress.Parse("10.1.2.3"), 5000)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Udp(IPAddress.Parse("11.1.2.3"), 5000)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Udp(IPAddress.Parse("::ffff:10.1.2.3"), 5000)));
        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(IPAddress.Parse("2001:db8::42"), 80)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Udp(IPAddress.Parse("2001:db8::42"), 80)));
    }

    [Fact]
    public void Dns_name_rules_must_match_the_addresses_the_name_resolved_to()
    {
        const string rules = "action=accept dsthost=qubes-os.org proto=tcp dstports=443\n";
        var qubesOrg = IPAddress.Parse("185.199.108.153");
        var resolved = new Dictionary<string, IPAddress[]> { ["qubes-os.org"] = [qubesOrg] };
        IEnumerable<IPAddress> Resolve(string name) => resolved.GetValueOrDefault(name, []);

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(qubesOrg, 443), Resolve));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Tcp(Web, 443), Resolve));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Tcp(qubesOrg, 80), Resolve));
    }

    [Fact]
    public void Dns_name_rules_must_match_nothing_without_a_resolver()
    {
        const string rules = "action=drop dsthost=qubes-os.org\naction=accept\n";

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(IPAddress.Parse("185.199.108.153"), 443)));
    }

    [Fact]
    public void Special_target_dns_must_match_port_53_to_the_dns_servers_over_tcp_and_udp()
    {
        const string rules = "action=accept specialtarget=dns\n";

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Udp(DnsServer, 53)));
        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Tcp(DnsServers[1], 53)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Udp(Web, 53)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Udp(DnsServer, 5353)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Icmp(DnsServer, 8)));
    }

    [Fact]
    public void Special_target_dns_with_a_proto_must_match_only_that_proto()
    {
        const string rules = "action=accept proto=udp specialtarget=dns\n";

        Assert.Equal(FirewallAction.Accept, Evaluate(rules, FirewallPacket.Udp(DnsServer, 53)));
        Assert.Equal(FirewallAction.Drop, Evaluate(rules, FirewallPacket.Tcp(DnsServer, 53)));
    }

    [Fact]
    public void Packet_must_refuse_ports_out_of_range_and_fields_of_another_protocol()
    {
        Assert.Throws<QubesValueError>(() => FirewallPacket.Tcp(Web, 65536));
        Assert.Throws<QubesValueError>(() => FirewallPacket.Udp(Web, -1));
        Assert.Throws<QubesValueError>(() => new FirewallPacket(Web, FirewallProtocol.Icmp, port: 80));
        Assert.Throws<QubesValueError>(() => new FirewallPacket(Web, FirewallProtocol.Tcp, icmpType: 8));
    }
}
