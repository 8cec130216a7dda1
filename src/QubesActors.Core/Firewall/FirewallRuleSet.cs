using System.Net;
using System.Text;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Firewall;

/// <summary>
/// Whole rule lists: the <c>admin.vm.firewall.Get/Set</c> payload, expiry, and the evaluator (docs §4).
/// </summary>
public static class FirewallRuleSet
{
    /// <summary>
    /// Parses the whole payload of <c>admin.vm.firewall.Set</c>: rules separated by <c>\n</c>, a trailing newline
    /// allowed, empty payload = no rules. All or nothing: any bad line fails the whole call.
    /// </summary>
    /// <exception cref="ProtocolError">Non-ASCII anywhere in the payload.</exception>
    /// <exception cref="QubesValueError">A line is not a valid rule (the message names the line).</exception>
    public static FirewallRules ParseRules(string untrustedText)
    {
        ArgumentNullException.ThrowIfNull(untrustedText);
        // The whole payload is checked first, as upstream decodes it as ASCII before looking at any line.
        var nonAscii = untrustedText.AsSpan().IndexOfAnyExceptInRange('\0', '\x7f');
        if (nonAscii >= 0)
        {
            var line = untrustedText.AsSpan(0, nonAscii).Count('\n') + 1;
            throw new ProtocolError($"Firewall rules are not ASCII (line {line})");
        }
        if (untrustedText.Length == 0)
            return FirewallRules.Empty;

        var body = untrustedText.EndsWith('\n') ? untrustedText[..^1] : untrustedText;
        var untrustedLines = body.Split('\n');
        var rules = new List<FirewallRule>(untrustedLines.Length);
        for (var i = 0; i < untrustedLines.Length; i++)
            rules.Add(FirewallRule.Parse(untrustedLines[i], lineNumber: i + 1));
        return new FirewallRules(rules);
    }

    /// <summary>The <c>admin.vm.firewall.Get</c> payload: each rule's API form followed by <c>\n</c>.</summary>
    public static string FormatRules(IEnumerable<FirewallRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var sb = new StringBuilder();
        foreach (var rule in rules)
            sb.Append(rule.ToApiString()).Append('\n');
        return sb.ToString();
    }

    /// <summary>The rules still in force at <paramref name="now"/>, in order; what Get returns.</summary>
    public static FirewallRules Active(IEnumerable<FirewallRule> rules, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return new FirewallRules(rules.Where(r => !r.IsExpired(now)));
    }

    /// <summary>
    /// When the earliest rule still in force expires, for the reload timer; null when none will.
    /// </summary>
    public static DateTimeOffset? NextExpiry(IEnumerable<FirewallRule> rules, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Where(r => !r.IsExpired(now)).Min(r => r.Expire);
    }

    /// <summary>
    /// Decides a packet: the first unexpired rule whose matches all apply decides; if none does, drop (fixed).
    /// </summary>
    /// <param name="dnsServers">The qube's DNS servers, for <c>specialtarget=dns</c>.</param>
    /// <param name="resolve">
    /// The addresses each DNS name resolved to when the rules were applied (upstream resolves then, not per
    /// connection); null resolves nothing, so name rules never match.
    /// </param>
    public static FirewallAction Evaluate(
        IEnumerable<FirewallRule> rules,
        FirewallPacket packet,
        DateTimeOffset now,
        IReadOnlyCollection<IPAddress> dnsServers,
        Func<string, IEnumerable<IPAddress>>? resolve = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(packet);
        ArgumentNullException.ThrowIfNull(dnsServers);
        foreach (var rule in rules)
        {
            if (!rule.IsExpired(now) && rule.Matches(packet, dnsServers, resolve))
                return rule.Action;
        }
        return FirewallAction.Drop;
    }
}
