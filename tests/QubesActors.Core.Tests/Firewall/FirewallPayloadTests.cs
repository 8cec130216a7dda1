using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>Whole payloads of admin.vm.firewall.Set / Get and the rule list type.</summary>
public class FirewallPayloadTests
{
    [Fact]
    public void ParseRules_must_read_an_empty_payload_as_no_rules()
    {
        Assert.Equal(FirewallRules.Empty, FirewallRuleSet.ParseRules(""));
        Assert.Empty(FirewallRuleSet.ParseRules(""));
    }

    [Theory]
    [InlineData("action=accept\n")]
    [InlineData("action=accept")]
    public void ParseRules_must_allow_but_not_require_a_trailing_newline(string payload)
    {
        Assert.Equal(FirewallRules.Default, FirewallRuleSet.ParseRules(payload));
    }

    [Fact]
    public void ParseRules_must_keep_the_order_of_the_lines_and_normalise_each()
    {
        const string payload =
            "proto=tcp dstports=1-1024 action=accept\n" +
            "action=drop proto=icmp comment=No ICMP\n" +
            "action=drop expire=2099450306 proto=udp\n" +
            "action=accept dsthost=10.0.0.1 proto=tcp dstports=22\n" +
            "action=accept\n";

        var rules = FirewallRuleSet.ParseRules(payload);

        Assert.Equal(5, rules.Count);
        Assert.Equal(
            "action=accept proto=tcp dstports=1-1024\n" +
            "action=drop proto=icmp comment=No ICMP\n" +
            "action=drop expire=2099450306 proto=udp\n" +
            "action=accept dst4=10.0.0.1/32 proto=tcp dstports=22-22\n" +
            "action=accept\n",
            FirewallRuleSet.FormatRules(rules));
        Assert.Equal(FirewallRuleSet.FormatRules(rules), rules.ToString());
    }

    [Fact]
    public void ParseRules_must_fail_whole_when_any_line_is_invalid_and_name_that_line()
    {
        const string payload = "action=accept proto=tcp\naction=drop\naction=accept dstports=80\naction=accept\n";

        var error = Assert.Throws<QubesValueError>(() => FirewallRuleSet.ParseRules(payload));

        Assert.StartsWith("Invalid firewall rule on line 3 'action=accept dstports=80': dstports is valid only", error.Message);
    }

    [Theory]
    [InlineData("\n", 1)]
    [InlineData("action=accept\n\n", 2)]
    [InlineData("action=accept\n\naction=drop\n", 2)]
    public void ParseRules_must_refuse_empty_lines_other_than_the_final_newline(string payload, int badLine)
    {
        var error = Assert.Throws<QubesValueError>(() => FirewallRuleSet.ParseRules(payload));

        Assert.Contains($"on line {badLine} ", error.Message);
        Assert.Contains("missing action=", error.Message);
    }

    [Fact]
    public void ParseRules_must_separate_lines_by_newline_only()
    {
        var error = Assert.Throws<QubesValueError>(() => FirewallRuleSet.ParseRules("action=accept\r\naction=drop\r\n"));

        Assert.Contains("on line 1 ", error.Message);
    }

    [Fact]
    public void ParseRules_must_refuse_non_ascii_anywhere_as_a_protocol_error_before_judging_lines()
    {
        // Line 1 is invalid too, but the payload as a whole is malformed first.
        var error = Assert.Throws<ProtocolError>(() => FirewallRuleSet.ParseRules("action=bogus\naction=accept comment=na\u00efve\n"));

        Assert.Contains("line 2", error.Message);
    }

    [Fact]
    public void FormatRules_must_end_every_rule_with_a_newline()
    {
        Assert.Equal("", FirewallRuleSet.FormatRules(FirewallRules.Empty));
        Assert.Equal("action=accept\n", FirewallRuleSet.FormatRules(FirewallRules.Default));
        Assert.Equal("action=accept\naction=drop\n",
            FirewallRuleSet.FormatRules([new FirewallRule(FirewallAction.Accept), new FirewallRule(FirewallAction.Drop)]));
    }

    [Fact]
    public void Default_rules_must_be_the_single_rule_accept()
    {
        var rule = Assert.Single(FirewallRules.Default);

        Assert.Equal(FirewallRule.Parse("action=accept"), rule);
    }

    [Fact]
    public void Rule_lists_must_be_equal_when_they_hold_equal_rules_in_the_same_order()
    {
        var a = new FirewallRules([FirewallRule.Parse("action=drop proto=udp"), FirewallRule.Parse("action=accept")]);
        var b = FirewallRuleSet.ParseRules("proto=udp action=drop\naction=accept\n");
        var reversed = new FirewallRules(a.Reverse());

        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, reversed);
        Assert.True(a != reversed);
    }

    [Fact]
    public void Rule_lists_must_not_change_when_the_source_collection_does()
    {
        var source = new List<FirewallRule> { new(FirewallAction.Accept) };
        var rules = new FirewallRules(source);

        source.Add(new FirewallRule(FirewallAction.Drop));

        Assert.Single(rules);
    }

    [Fact]
    public void Rule_lists_must_refuse_null_rules()
    {
        Assert.Throws<ArgumentException>(() => new FirewallRules([null!]));
    }
}
