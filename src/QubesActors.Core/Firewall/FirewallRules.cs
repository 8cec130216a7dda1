using System.Collections;
using System.Collections.Immutable;

namespace QubesActors.Core.Firewall;

/// <summary>
/// A qube's ordered rule list: immutable, equal when the same rules are in the same order.
/// </summary>
public sealed class FirewallRules : IReadOnlyList<FirewallRule>, IEquatable<FirewallRules>
{
    private readonly ImmutableArray<FirewallRule> _rules;

    public FirewallRules(IEnumerable<FirewallRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        _rules = [.. rules];
        if (_rules.Any(r => r is null))
            throw new ArgumentException("a rule list cannot hold null", nameof(rules));
    }

    /// <summary>No rules: with the fixed drop after the list, everything is dropped.</summary>
    public static FirewallRules Empty { get; } = new([]);

    /// <summary>What a qube without explicit rules has: the single rule <c>action=accept</c>.</summary>
    public static FirewallRules Default { get; } = new([new FirewallRule(FirewallAction.Accept)]);

    public int Count => _rules.Length;

    public FirewallRule this[int index] => _rules[index];

    public IEnumerator<FirewallRule> GetEnumerator() => ((IEnumerable<FirewallRule>)_rules).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public bool Equals(FirewallRules? other) =>
        other is not null && _rules.AsSpan().SequenceEqual(other._rules.AsSpan());

    public override bool Equals(object? obj) => Equals(obj as FirewallRules);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var rule in _rules)
            hash.Add(rule);
        return hash.ToHashCode();
    }

    public static bool operator ==(FirewallRules? left, FirewallRules? right) =>
        left is null ? right is null : left.Equals(right);

    public static bool operator !=(FirewallRules? left, FirewallRules? right) => !(left == right);

    /// <summary>The Admin API payload: one rule per line, each ending in a newline.</summary>
    public override string ToString() => FirewallRuleSet.FormatRules(this);
}
