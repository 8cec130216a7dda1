using System.Net;
using Xunit;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>expire=: expired rules are ignored, omitted by Get, and the earliest expiry drives the reload timer.</summary>
public class FirewallExpiryTests
{
    private static readonly DateTimeOffset Expire = DateTimeOffset.FromUnixTimeSeconds(2099450306);
    private static readonly IPAddress[] NoDnsServers = [];

    [Fact]
    public void Rule_must_apply_strictly_before_its_expire_time()
    {
        var rule = FirewallRule.Parse("action=drop expire=2099450306 proto=udp");

        Assert.False(rule.IsExpired(Expire.AddTicks(-1)));
        Assert.True(rule.IsExpired(Expire));
        Assert.True(rule.IsExpired(Expire.AddDays(1)));
    }

    [Fact]
    public void Rule_without_expire_must_never_expire()
    {
        Assert.False(new FirewallRule(FirewallAction.Accept).IsExpired(DateTimeOffset.MaxValue));
    }

    [Fact]
    public void Active_must_omit_expired_rules_and_keep_the_order_of_the_rest()
    {
        var rules = FirewallRuleSet.ParseRules(
            "action=drop expire=100 proto=udp\n" +
            "action=accept proto=tcp dstports=443\n" +
            "action=drop expire=300 proto=icmp\n" +
            "action=accept expire=200\n");

        var active = FirewallRuleSet.Active(rules, DateTimeOffset.FromUnixTimeSeconds(150));

        Assert.Equal(
            "action=accept proto=tcp dstports=443-443\n" +
            "action=drop expire=300 proto=icmp\n" +
            "action=accept expire=200\n",
            FirewallRuleSet.FormatRules(active));
    }

    [Fact]
    public void NextExpiry_must_be_the_earliest_expire_still_ahead()
    {
        var rules = FirewallRuleSet.ParseRules(
            "action=drop expire=100 proto=udp\n" +
            "action=accept proto=tcp\n" +
            "action=drop expire=300 proto=icmp\n" +
            "action=accept expire=200\n");

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(100), FirewallRuleSet.NextExpiry(rules, DateTimeOffset.FromUnixTimeSeconds(0)));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(200), FirewallRuleSet.NextExpiry(rules, DateTimeOffset.FromUnixTimeSeconds(100)));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(300), FirewallRuleSet.NextExpiry(rules, DateTimeOffset.FromUnixTimeSeconds(250)));
        Assert.Null(FirewallRuleSet.NextExpiry(rules, DateTimeOffset.FromUnixTimeSeconds(300)));
    }

    [Fact]
    public void NextExpiry_must_be_null_when_no_rule_expires()
    {
        Assert.Null(FirewallRuleSet.NextExpiry(FirewallRules.Default, DateTimeOffset.UnixEpoch));
        Assert.Null(FirewallRuleSet.NextExpiry(FirewallRules.Empty, DateTimeOffset.UnixEpoch));
    }

    [Fact]
    public void Evaluate_must_ignore_expired_rules()
    {
        var rules = FirewallRuleSet.ParseRules("action=drop expire=2099450306 proto=udp\naction=accept\n");
        var dns = FirewallPacket.Udp(IPAddress.Parse("9.9.9.9"), 53);

        Assert.Equal(FirewallAction.Drop, FirewallRuleSet.Evaluate(rules, dns, Expire.AddSeconds(-1), NoDnsServers));
        Assert.Equal(FirewallAction.Accept, FirewallRuleSet.Evaluate(rules, dns, Expire, NoDnsServers));
    }

    [Fact]
    public void Evaluate_must_drop_everything_when_every_rule_has_expired()
    {
        var rules = FirewallRuleSet.ParseRules("action=accept expire=100\n");

        Assert.Equal(FirewallAction.Drop,
            FirewallRuleSet.Evaluate(rules, FirewallPacket.Tcp(IPAddress.Loopback, 80), DateTimeOffset.FromUnixTimeSeconds(100), NoDnsServers));
    }
}
