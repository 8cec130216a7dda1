using QubesActors.Core.Errors;

namespace QubesActors.Core.Firewall;

/// <summary>An inclusive range of destination ports (<c>dstports=N-M</c>), 0..65535 with First &lt;= Last.</summary>
public readonly record struct PortRange
{
    public const int MaxPort = 65535;

    public PortRange(int first, int last)
    {
        if (first is < 0 or > MaxPort || last is < 0 or > MaxPort)
            throw new QubesValueError($"port out of range 0-{MaxPort}: {first}-{last}");
        if (first > last)
            throw new QubesValueError($"port range is reversed: {first}-{last}");
        First = first;
        Last = last;
    }

    /// <summary>A range holding one port; printed as <c>N-N</c> like upstream.</summary>
    public static PortRange Single(int port) => new(port, port);

    public int First { get; }
    public int Last { get; }

    public bool Contains(int port) => port >= First && port <= Last;

    /// <summary>Parses <c>N</c> or <c>N-M</c>.</summary>
    public static PortRange Parse(string untrustedValue)
    {
        ArgumentNullException.ThrowIfNull(untrustedValue);
        var dash = untrustedValue.IndexOf('-');
        var untrustedFirst = dash < 0 ? untrustedValue : untrustedValue[..dash];
        var untrustedLast = dash < 0 ? untrustedValue : untrustedValue[(dash + 1)..];
        // Five digits is enough for 65535; the cap keeps the digit loop from overflowing.
        if (!FirewallWords.TryParseDecimal(untrustedFirst, 5, MaxPort, out var first)
            || !FirewallWords.TryParseDecimal(untrustedLast, 5, MaxPort, out var last))
            throw new QubesValueError(
                $"invalid dstports {FirewallWords.Quote(untrustedValue)} (expected N or N-M, ports 0-{MaxPort})");
        return new PortRange((int)first, (int)last);
    }

    /// <summary>Always a range, also for a single port (<c>80-80</c>), as the server prints it.</summary>
    public override string ToString() => $"{First}-{Last}";
}
