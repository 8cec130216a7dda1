using System.Net;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>Building rules in code: the same invariants as the parser, and value semantics.</summary>
public class FirewallRuleModelTests
{
    [Fact]
    public void Rule_must_refuse_dstports_without_tcp_or_udp()
    {
        Assert.Throws<QubesValueError>(() => new FirewallRule(FirewallAction.Accept, dstPorts: PortRange.Single(80)));
        Assert.Throws<QubesValueError>(() =>
            new FirewallRule(FirewallAction.Accept, proto: FirewallProtocol.Icmp, dstPorts: PortRange.Single(80)));
    }

    [Fact]
    public void Rule_must_refuse_icmptype_without_icmp()
    {
        Assert.Throws<QubesValueError>(() => new FirewallRule(FirewallAction.Accept, icmpType: 8));
        Assert.Throws<QubesValueError>(() => new FirewallRule(FirewallAction.Accept, proto: FirewallProtocol.Udp, icmpType: 8));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a=b")]
    [InlineData("line\nbreak")]
    [InlineData("caf\u00e9")]
    public void Rule_must_refuse_a_comment_with_other_characters(string comment)
    {
        Assert.Throws<QubesValueError>(() => new FirewallRule(FirewallAction.Accept, comment: comment));
    }

    [Fact]
    public void Rule_must_refuse_undefined_enum_values_and_expire_before_the_epoch()
    {
        Assert.Throws<QubesValueError>(() => new FirewallRule((FirewallAction)7));
        Assert.Throws<QubesValueError>(() => new FirewallRule(FirewallAction.Accept, proto: (FirewallProtocol)7));
        Assert.Throws<QubesValueError>(() => new FirewallRule(FirewallAction.Accept, specialTarget: (SpecialTarget)7));
        Assert.Throws<QubesValueError>(() =>
            new FirewallRule(FirewallAction.Accept, expire: DateTimeOffset.FromUnixTimeSeconds(-1)));
    }

    [Fact]
    public void Rule_must_keep_expire_in_whole_seconds_utc_as_the_wire_does()
    {
        var local = new DateTimeOffset(2036, 7, 12, 10, 0, 0, 500, TimeSpan.FromHours(2));

        var rule = new FirewallRule(FirewallAction.Drop, expire: local);

        Assert.Equal(TimeSpan.Zero, rule.Expire!.Value.Offset);
        Assert.Equal(local.ToUnixTimeSeconds(), rule.Expire.Value.ToUnixTimeSeconds());
        Assert.Equal(0, rule.Expire.Value.Millisecond);
        Assert.Equal(rule, FirewallRule.Parse(rule.ToApiString()));
    }

    [Fact]
    public void Rules_must_be_equal_when_all_fields_are_equal()
    {
        FirewallRule Make() => new(
            FirewallAction.Accept,
            DateTimeOffset.FromUnixTimeSeconds(2099450306),
            DstHost.FromNetwork(IPAddress.Parse("10.0.0.0"), 8),
            FirewallProtocol.Tcp,
            SpecialTarget.Dns,
            new PortRange(1, 1024),
            comment: "same");

        Assert.Equal(Make(), Make());
        Assert.Equal(Make().GetHashCode(), Make().GetHashCode());
        Assert.NotEqual(Make(), new FirewallRule(FirewallAction.Accept));
        Assert.Equal("action=accept expire=2099450306 dst4=10.0.0.0/8 proto=tcp specialtarget=dns dstports=1-1024 comment=same",
            Make().ToString());
    }

    [Theory]
    [InlineData(-1, 0)]
    [InlineData(0, 65536)]
    [InlineData(2, 1)]
    public void PortRange_must_refuse_ports_out_of_range_or_reversed(int first, int last)
    {
        Assert.Throws<QubesValueError>(() => new PortRange(first, last));
    }

    [Fact]
    public void PortRange_must_print_a_single_port_as_a_range()
    {
        Assert.Equal("80-80", PortRange.Single(80).ToString());
        Assert.Equal(PortRange.Single(80), PortRange.Parse("80"));
        Assert.Equal(new PortRange(1, 1024), PortRange.Parse("1-1024"));
    }

    [Theory]
    [InlineData("10.0.0.0", 33)]
    [InlineData("10.0.0.0", -1)]
    [InlineData("::", 129)]
    [InlineData("fe80::1%2", 64)]
    public void DstHost_must_refuse_prefix_lengths_out_of_range_and_scoped_addresses(string address, int prefix)
    {
        Assert.Throws<QubesValueError>(() => DstHost.FromNetwork(IPAddress.Parse(address), prefix));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Example.com")]
    [InlineData("1.2.3.4")]
    [InlineData("10.0.0.1")]
    [InlineData("123")]
    [InlineData("host:80")]
    public void DstHost_must_refuse_dns_names_that_are_not_names(string name)
    {
        Assert.Throws<QubesValueError>(() => DstHost.FromDnsName(name));
    }

    [Theory]
    [InlineData("10.0.0.0/8", "10.255.255.255", true)]
    [InlineData("10.0.0.0/8", "11.0.0.0", false)]
    [InlineData("192.168.1.77/24", "192.168.1.5", true)]
    [InlineData("192.168.1.77/24", "192.168.2.77", false)]
    [InlineData("192.168.1.77", "192.168.1.77", true)]
    [InlineData("192.168.1.77", "192.168.1.78", false)]
    [InlineData("0.0.0.0/0", "203.0.113.9", true)]
    [InlineData("0.0.0.0/0", "::1", false)]
    [InlineData("10.0.0.1", "::ffff:10.0.0.1", false)]
    [InlineData("2001:db8::/32", "2001:db8:ffff::1", true)]
    [InlineData("2001:db8::/32", "2001:db9::1", false)]
    [InlineData("::/0", "2001:db8::1", true)]
    [InlineData("::/0", "10.0.0.1", false)]
    [InlineData("::1", "::1", true)]
    [InlineData("example.com", "93.184.216.34", false)]
    public void DstHost_must_contain_exactly_the_addresses_of_its_family_under_its_prefix(string host, string address, bool expected)
    {
        Assert.Equal(expected, DstHost.Parse(host).Contains(IPAddress.Parse(address)));
    }
}
