using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>Properties over arbitrary valid rules and arbitrary garbage.</summary>
[Properties(Arbitrary = [typeof(FirewallArbitraries)], MaxTest = 500)]
public class FirewallPropertyTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    private static readonly IPAddress[] DnsServers = [IPAddress.Parse("10.139.1.1"), IPAddress.Parse("fd09:24ef:4179::a8b:1")];

    [Property]
    public bool Parse_must_read_back_every_printed_rule(FirewallRule rule) =>
        FirewallRule.Parse(rule.ToApiString()) == rule;

    [Property]
    public bool Printing_must_be_idempotent(FirewallRule rule)
    {
        var printed = rule.ToApiString();
        return FirewallRule.Parse(printed).ToApiString() == printed;
    }

    [Property]
    public Property Parse_must_accept_keys_in_any_order_and_dsthost_for_addresses(FirewallRule rule)
    {
        // comment= stays last; everything before it is shuffled, and dst4/dst6 may be spelled dsthost.
        var printed = rule.ToApiString();
        var commentAt = printed.IndexOf(" comment=", StringComparison.Ordinal);
        var options = (commentAt < 0 ? printed : printed[..commentAt]).Split(' ');
        var comment = commentAt < 0 ? "" : printed[commentAt..];
        var reordered =
            from shuffled in Gen.Shuffle(options)
            from synonym in Gen.Elements(true, false)
            select string.Join(' ', shuffled.Select(o => synonym ? SpellAsDsthost(o) : o)) + comment;
        return Prop.ForAll(reordered.ToArbitrary(), line => FirewallRule.Parse(line) == rule);
    }

    [Property]
    public bool ParseRules_must_read_back_every_printed_rule_list(FirewallRules rules) =>
        FirewallRuleSet.ParseRules(FirewallRuleSet.FormatRules(rules)) == rules;

    [Property]
    public bool ParseRules_must_accept_the_payload_without_its_final_newline(FirewallRules rules)
    {
        var payload = FirewallRuleSet.FormatRules(rules);
        return FirewallRuleSet.ParseRules(payload.TrimEnd('\n')) == rules || payload.Length == 0;
    }

    [Property(MaxTest = 2000)]
    public bool Parse_must_fail_on_arbitrary_text_only_with_qubes_errors(NonNull<string> text) =>
        FailsOnlyWithQubesErrors(() => FirewallRule.Parse(text.Get))
        && FailsOnlyWithQubesErrors(() => FirewallRuleSet.ParseRules(text.Get));

    [Property(MaxTest = 2000)]
    public Property Parse_must_fail_on_near_miss_rules_only_with_qubes_errors() =>
        Prop.ForAll(FirewallGenerators.NearMissLine.ToArbitrary(), line =>
            FailsOnlyWithQubesErrors(() => FirewallRule.Parse(line))
            && FailsOnlyWithQubesErrors(() => FirewallRuleSet.ParseRules(line)));

    [Property]
    public Property Parse_must_fail_on_a_corrupted_rule_only_with_qubes_errors(FirewallRule rule) =>
        // One character of a valid line replaced by anything: reaches every value parser with almost-valid input.
        Prop.ForAll(
            (from at in Gen.Choose(0, rule.ToApiString().Length - 1)
             from c in Gen.Choose(0, 0x7f).Select(x => (char)x)
             select rule.ToApiString().Remove(at, 1).Insert(at, c.ToString())).ToArbitrary(),
            line => FailsOnlyWithQubesErrors(() => FirewallRule.Parse(line)));

    [Property]
    public bool Default_rules_must_accept_every_packet(FirewallPacket packet) =>
        FirewallRuleSet.Evaluate(FirewallRules.Default, packet, Now, DnsServers) == FirewallAction.Accept;

    [Property]
    public bool Empty_rules_must_drop_every_packet(FirewallPacket packet) =>
        FirewallRuleSet.Evaluate(FirewallRules.Empty, packet, Now, DnsServers) == FirewallAction.Drop;

    [Property]
    public bool Expired_rules_must_not_change_any_decision(FirewallRules rules, FirewallPacket packet) =>
        FirewallRuleSet.Evaluate(rules, packet, Now, DnsServers) ==
        FirewallRuleSet.Evaluate(FirewallRuleSet.Active(rules, Now), packet, Now, DnsServers);

    [Property]
    public bool Rules_after_the_first_match_must_not_change_the_decision(
        FirewallRules rules, FirewallRules more, FirewallPacket packet)
    {
        var decided = rules.Any(r => !r.IsExpired(Now) && r.Matches(packet, DnsServers));
        var before = FirewallRuleSet.Evaluate(rules, packet, Now, DnsServers);
        var after = FirewallRuleSet.Evaluate(rules.Concat(more), packet, Now, DnsServers);
        return !decided || before == after;
    }

    [Property]
    public bool A_network_must_contain_its_own_address(FirewallRule rule) =>
        rule.DstHost is not { Address: { } address } host || host.Contains(address);

    [Property]
    public bool NextExpiry_must_be_ahead_of_now_and_the_earliest_active_expire(FirewallRules rules)
    {
        var next = FirewallRuleSet.NextExpiry(rules, Now);
        var active = FirewallRuleSet.Active(rules, Now).Where(r => r.Expire is not null).ToList();
        return next is null ? active.Count == 0 : next > Now && active.All(r => r.Expire >= next);
    }

    private static string SpellAsDsthost(string option) =>
        option.StartsWith("dst4=", StringComparison.Ordinal) || option.StartsWith("dst6=", StringComparison.Ordinal)
            ? "dsthost=" + option[5..]
            : option;

    private static bool FailsOnlyWithQubesErrors(Action parse)
    {
        try
        {
            parse();
            return true;
        }
        catch (Exception e) when (e.GetType() == typeof(QubesValueError) || e.GetType() == typeof(ProtocolError))
        {
            return true;
        }
    }
}
