using System.Net;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>One line of admin.vm.firewall.Get/Set (docs/qubes-semantics.md §4).</summary>
public class FirewallRuleParseTests
{
    [Theory]
    [InlineData("action=accept")]
    [InlineData("action=drop")]
    [InlineData("action=accept proto=tcp dstports=1-1024")]
    [InlineData("action=drop proto=icmp comment=No ICMP")]
    [InlineData("action=drop expire=2099450306 proto=udp")]
    [InlineData("action=accept dst4=10.0.0.0/8 proto=tcp dstports=443-443")]
    [InlineData("action=accept dst4=0.0.0.0/0")]
    [InlineData("action=accept dst6=2001:db8::/32 proto=udp dstports=53-53")]
    [InlineData("action=accept dst6=::/0")]
    [InlineData("action=accept dst6=::ffff:10.1.2.3/128")]
    [InlineData("action=accept dsthost=qubes-os.org proto=tcp dstports=80-80")]
    [InlineData("action=accept dsthost=my_host.example.org.")]
    [InlineData("action=accept specialtarget=dns")]
    [InlineData("action=accept proto=udp specialtarget=dns")]
    [InlineData("action=drop proto=icmp icmptype=8")]
    [InlineData("action=accept proto=tcp dstports=0-65535")]
    [InlineData("action=accept expire=0")]
    [InlineData("action=accept expire=253402300799")]
    [InlineData("action=accept comment=Web [main]; see: a/b, c_d-e.")]
    [InlineData("action=accept comment=  spaces  kept  ")]
    [InlineData("action=accept expire=2099450306 dst4=192.168.1.1/32 proto=tcp specialtarget=dns dstports=53-53 comment=every key")]
    [InlineData("action=drop expire=1 dst6=fe80::/10 proto=icmp specialtarget=dns icmptype=255 comment=every key")]
    public void Parse_must_print_a_canonical_line_back_unchanged(string line)
    {
        Assert.Equal(line, FirewallRule.Parse(line).ToApiString());
    }

    [Fact]
    public void Parse_must_read_the_tcp_port_range_example()
    {
        var rule = FirewallRule.Parse("action=accept proto=tcp dstports=1-1024");

        Assert.Equal(new FirewallRule(FirewallAction.Accept, proto: FirewallProtocol.Tcp, dstPorts: new PortRange(1, 1024)), rule);
        Assert.Equal(1, rule.DstPorts!.Value.First);
        Assert.Equal(1024, rule.DstPorts!.Value.Last);
        Assert.Null(rule.Expire);
        Assert.Null(rule.DstHost);
        Assert.Null(rule.Comment);
    }

    [Fact]
    public void Parse_must_read_the_no_icmp_example_with_a_comment_holding_a_space()
    {
        var rule = FirewallRule.Parse("action=drop proto=icmp comment=No ICMP");

        Assert.Equal(FirewallAction.Drop, rule.Action);
        Assert.Equal(FirewallProtocol.Icmp, rule.Proto);
        Assert.Null(rule.IcmpType);
        Assert.Equal("No ICMP", rule.Comment);
    }

    [Fact]
    public void Parse_must_read_expire_as_unix_seconds_in_utc()
    {
        var rule = FirewallRule.Parse("action=drop expire=2099450306 proto=udp");

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(2099450306), rule.Expire);
        Assert.Equal(TimeSpan.Zero, rule.Expire!.Value.Offset);
        Assert.Equal(FirewallProtocol.Udp, rule.Proto);
    }

    [Fact]
    public void Parse_must_keep_which_destination_form_was_given()
    {
        var v4 = FirewallRule.Parse("action=accept dst4=10.0.0.0/8").DstHost!;
        var v6 = FirewallRule.Parse("action=accept dst6=2001:db8::/32").DstHost!;
        var name = FirewallRule.Parse("action=accept dsthost=example.com").DstHost!;

        Assert.Equal((DstHostKind.Ipv4Network, "10.0.0.0", 8), (v4.Kind, v4.Host, v4.PrefixLength));
        Assert.Equal((DstHostKind.Ipv6Network, "2001:db8::", 32), (v6.Kind, v6.Host, v6.PrefixLength));
        Assert.Equal((DstHostKind.DnsName, "example.com", 0), (name.Kind, name.Host, name.PrefixLength));
        Assert.Equal(IPAddress.Parse("10.0.0.0"), v4.Address);
        Assert.Null(name.Address);
    }

    [Theory]
    // Keys in any order; printed in the server's order.
    [InlineData("proto=tcp dstports=1-1024 action=accept", "action=accept proto=tcp dstports=1-1024")]
    [InlineData("icmptype=0 proto=icmp expire=5 action=drop", "action=drop expire=5 proto=icmp icmptype=0")]
    [InlineData("specialtarget=dns proto=udp action=accept dst4=10.0.0.1", "action=accept dst4=10.0.0.1/32 proto=udp specialtarget=dns")]
    [InlineData("dstports=22 dsthost=example.com expire=7 proto=tcp action=drop comment=ssh", "action=drop expire=7 dsthost=example.com proto=tcp dstports=22-22 comment=ssh")]
    // A single port is printed as a range.
    [InlineData("action=accept proto=tcp dstports=80", "action=accept proto=tcp dstports=80-80")]
    // Bare addresses get /32 or /128; dsthost is a synonym printed back as dst4/dst6.
    [InlineData("action=accept dst4=10.1.2.3", "action=accept dst4=10.1.2.3/32")]
    [InlineData("action=accept dsthost=10.1.2.3", "action=accept dst4=10.1.2.3/32")]
    [InlineData("action=accept dsthost=10.0.0.0/8", "action=accept dst4=10.0.0.0/8")]
    [InlineData("action=accept dst6=::1", "action=accept dst6=::1/128")]
    [InlineData("action=accept dsthost=2001:DB8:0:0:0:0:0:1", "action=accept dst6=2001:db8::1/128")]
    [InlineData("action=accept dsthost=2001:db8::/32", "action=accept dst6=2001:db8::/32")]
    // The address is kept as given; matching masks it.
    [InlineData("action=accept dst4=192.168.1.77/24", "action=accept dst4=192.168.1.77/24")]
    // Numbers as plain decimals, leading zeros read as such.
    [InlineData("action=accept expire=0123", "action=accept expire=123")]
    [InlineData("action=accept proto=tcp dstports=0080-00443", "action=accept proto=tcp dstports=80-443")]
    // Spaces between keys are separators only.
    [InlineData("  action=accept   proto=tcp  ", "action=accept proto=tcp")]
    [InlineData("action=accept  comment=two spaces before the key", "action=accept comment=two spaces before the key")]
    public void Parse_must_accept_keys_in_any_order_and_print_them_in_the_server_order(string line, string expected)
    {
        Assert.Equal(expected, FirewallRule.Parse(line).ToApiString());
    }

    [Fact]
    public void Parse_must_treat_dst4_dst6_and_dsthost_as_the_same_rule()
    {
        Assert.Equal(FirewallRule.Parse("action=accept dst4=10.0.0.1"), FirewallRule.Parse("action=accept dsthost=10.0.0.1/32"));
        Assert.Equal(FirewallRule.Parse("action=accept dst6=::1"), FirewallRule.Parse("action=accept dsthost=0:0::1/128"));
    }

    [Theory]
    [InlineData("", "missing action=")]
    [InlineData("proto=tcp dstports=80", "missing action=")]
    [InlineData("comment=hello", "missing action=")]
    [InlineData("   ", "missing action=")]
    public void Parse_must_refuse_a_rule_without_action(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Theory]
    [InlineData("action=accept foo=bar", "unknown key 'foo'")]
    [InlineData("Action=accept", "unknown key 'Action'")]
    [InlineData("action=accept port=80", "unknown key 'port'")]
    [InlineData("action=accept dst=10.0.0.1", "unknown key 'dst'")]
    [InlineData("=accept", "unknown key ''")]
    [InlineData("action=accept proto", "'proto' is not key=value")]
    [InlineData("action=accept comment", "'comment' is not key=value")]
    public void Parse_must_refuse_unknown_keys(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Theory]
    [InlineData("action=accept action=drop", "duplicated key 'action'")]
    [InlineData("action=accept action=accept", "duplicated key 'action'")]
    [InlineData("action=accept proto=tcp proto=udp", "duplicated key 'proto'")]
    [InlineData("action=accept expire=1 expire=2", "duplicated key 'expire'")]
    [InlineData("action=accept proto=tcp dstports=1 dstports=2", "duplicated key 'dstports'")]
    [InlineData("action=accept proto=icmp icmptype=1 icmptype=2", "duplicated key 'icmptype'")]
    [InlineData("action=accept specialtarget=dns specialtarget=dns", "duplicated key 'specialtarget'")]
    [InlineData("action=accept dsthost=a.org dsthost=b.org", "duplicated key 'dsthost'")]
    [InlineData("action=accept dst4=10.0.0.1 dst6=::1", "duplicated destination: 'dst6' after 'dst4'")]
    [InlineData("action=accept dst4=10.0.0.1 dsthost=10.0.0.1", "duplicated destination: 'dsthost' after 'dst4'")]
    public void Parse_must_refuse_duplicated_keys(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Theory]
    [InlineData("action=accept dstports=80")]
    [InlineData("action=accept proto=icmp dstports=80")]
    [InlineData("dstports=80-90 action=drop")]
    public void Parse_must_refuse_dstports_without_tcp_or_udp(string line)
    {
        AssertRefused(line, "dstports is valid only with proto=tcp or proto=udp");
    }

    [Theory]
    [InlineData("action=accept icmptype=8")]
    [InlineData("action=accept proto=tcp icmptype=8")]
    [InlineData("action=accept proto=udp icmptype=0")]
    public void Parse_must_refuse_icmptype_without_icmp(string line)
    {
        AssertRefused(line, "icmptype is valid only with proto=icmp");
    }

    [Theory]
    [InlineData("action=allow", "invalid action 'allow'")]
    [InlineData("action=Accept", "invalid action 'Accept'")]
    [InlineData("action=", "empty value for 'action'")]
    [InlineData("action=accept\r", "invalid action 'accept\\x0d'")]
    [InlineData("action=accept\tproto=tcp", "invalid action 'accept\\x09proto=tcp'")]
    [InlineData("action=accept proto=sctp", "invalid proto 'sctp'")]
    [InlineData("action=accept proto=TCP", "invalid proto 'TCP'")]
    [InlineData("action=accept proto=", "empty value for 'proto'")]
    [InlineData("action=accept specialtarget=ntp", "invalid specialtarget 'ntp'")]
    public void Parse_must_refuse_invalid_words(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Theory]
    [InlineData("action=accept proto=tcp dstports=1024-1", "port range is reversed: 1024-1")]
    [InlineData("action=accept proto=tcp dstports=65536", "invalid dstports '65536'")]
    [InlineData("action=accept proto=tcp dstports=0-65536", "invalid dstports '0-65536'")]
    [InlineData("action=accept proto=tcp dstports=-1", "invalid dstports '-1'")]
    [InlineData("action=accept proto=tcp dstports=+80", "invalid dstports '+80'")]
    [InlineData("action=accept proto=tcp dstports=80-", "invalid dstports '80-'")]
    [InlineData("action=accept proto=tcp dstports=1-2-3", "invalid dstports '1-2-3'")]
    [InlineData("action=accept proto=tcp dstports=http", "invalid dstports 'http'")]
    [InlineData("action=accept proto=tcp dstports=999999999999999999999", "invalid dstports")]
    [InlineData("action=accept proto=icmp icmptype=256", "invalid icmptype '256'")]
    [InlineData("action=accept proto=icmp icmptype=-1", "invalid icmptype '-1'")]
    [InlineData("action=accept proto=icmp icmptype=echo", "invalid icmptype 'echo'")]
    [InlineData("action=accept expire=soon", "invalid expire 'soon'")]
    [InlineData("action=accept expire=+3600", "invalid expire '+3600'")]
    [InlineData("action=accept expire=-1", "invalid expire '-1'")]
    [InlineData("action=accept expire=253402300800", "invalid expire '253402300800'")]
    [InlineData("action=accept expire=99999999999999999999", "invalid expire")]
    public void Parse_must_refuse_numbers_out_of_range_or_not_decimal(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Theory]
    [InlineData("action=accept dst4=1.2.3.256", "invalid IP address '1.2.3.256'")]
    [InlineData("action=accept dst4=1.2.3", "invalid IP address '1.2.3'")]
    [InlineData("action=accept dst4=01.2.3.4", "invalid IP address '01.2.3.4'")]
    [InlineData("action=accept dst4=0x7f.0.0.1", "invalid IP address '0x7f.0.0.1'")]
    [InlineData("action=accept dst4=1.2.3.4/33", "invalid prefix length '33' (expected 0-32)")]
    [InlineData("action=accept dst4=1.2.3.4/-1", "invalid prefix length '-1'")]
    [InlineData("action=accept dst4=1.2.3.4/", "invalid prefix length ''")]
    [InlineData("action=accept dst4=1.2.3.4/8/8", "invalid prefix length '8/8'")]
    [InlineData("action=accept dst4=::1", "dst4 needs an IPv4 address, not '::1'")]
    [InlineData("action=accept dst4=example.com", "invalid IP address 'example.com'")]
    [InlineData("action=accept dst6=10.0.0.1", "dst6 needs an IPv6 address, not '10.0.0.1'")]
    [InlineData("action=accept dst6=::1/129", "invalid prefix length '129' (expected 0-128)")]
    [InlineData("action=accept dst6=fe80::1%eth0", "invalid IP address 'fe80::1%eth0'")]
    [InlineData("action=accept dst6=[::1]", "invalid IP address '[::1]'")]
    [InlineData("action=accept dst6=1::2::3", "invalid IP address '1::2::3'")]
    [InlineData("action=accept dsthost=Example.com", "invalid host 'Example.com'")]
    [InlineData("action=accept dsthost=exa*mple.com", "invalid host 'exa*mple.com'")]
    [InlineData("action=accept dsthost=1.2.3.999", "invalid IP address '1.2.3.999'")]
    [InlineData("action=accept dsthost=010.0.0.1", "invalid IP address '010.0.0.1'")]
    [InlineData("action=accept dsthost=example.com/24", "invalid IP address 'example.com'")]
    [InlineData("action=accept dsthost=", "empty value for 'dsthost'")]
    public void Parse_must_refuse_invalid_destinations(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Fact]
    public void Parse_must_refuse_a_dns_name_longer_than_dns_allows()
    {
        AssertRefused("action=accept dsthost=" + new string('a', 254), "DNS name must be 1-253 characters");
    }

    [Theory]
    [InlineData("action=accept comment=", "empty value for 'comment'")]
    [InlineData("action=accept comment=hi proto=tcp", "comment= must be the last key")]
    [InlineData("action=accept comment=a comment=b", "comment= must be the last key")]
    [InlineData("comment=x action=accept", "comment= must be the last key")]
    [InlineData("action=accept comment=say \"hi\"", "invalid character '\"' in comment")]
    [InlineData("action=accept comment=50%", "invalid character '%' in comment")]
    [InlineData("action=accept comment=tab\there", "invalid character '\\x09' in comment")]
    [InlineData("action=accept comment=nul\0", "invalid character '\\x00' in comment")]
    public void Parse_must_refuse_a_comment_that_is_not_last_or_has_other_characters(string line, string reason)
    {
        AssertRefused(line, reason);
    }

    [Theory]
    [InlineData("action=accept comment=caf\u00e9")]
    [InlineData("action=accept dsthost=b\u00fccher.de")]
    [InlineData("action=accept proto=tcp dstports=\u0668\u0660")] // Arabic-Indic digits 80
    [InlineData("action=\u0430ccept")] // Cyrillic a
    [InlineData("\u00a0action=accept")] // no-break space
    public void Parse_must_refuse_non_ascii_as_a_protocol_error(string line)
    {
        var error = Assert.Throws<ProtocolError>(() => FirewallRule.Parse(line));
        Assert.Equal("ProtocolError", error.QubesClassName);
    }

    [Fact]
    public void Parse_must_name_the_line_and_the_reason_in_the_message()
    {
        var error = Assert.Throws<QubesValueError>(() => FirewallRule.Parse("action=accept dstports=80"));

        Assert.Equal("Invalid firewall rule 'action=accept dstports=80': dstports is valid only with proto=tcp or proto=udp", error.Message);
        Assert.Equal("QubesValueError", error.QubesClassName);
    }

    [Fact]
    public void Parse_must_escape_control_characters_and_cap_the_length_of_the_quoted_line()
    {
        var line = "action=\u001b[31mred" + new string('x', 500);

        var error = Assert.Throws<QubesValueError>(() => FirewallRule.Parse(line));

        Assert.DoesNotContain('\u001b', error.Message);
        Assert.Contains("\\x1b[31m", error.Message);
        Assert.True(error.Message.Length < 400, error.Message);
    }

    [Fact]
    public void Parse_must_refuse_null()
    {
        Assert.Throws<ArgumentNullException>(() => FirewallRule.Parse(null!));
    }

    private static void AssertRefused(string line, string reason)
    {
        var error = Assert.Throws<QubesValueError>(() => FirewallRule.Parse(line));
        Assert.StartsWith("Invalid firewall rule '", error.Message);
        Assert.Contains(reason, error.Message);
    }
}
