namespace QubesActors.Core.Firewall;

/// <summary>What a matching rule does with the packet (<c>action=</c>).</summary>
public enum FirewallAction
{
    Accept,
    Drop,
}

/// <summary>The protocols a rule can name (<c>proto=</c>).</summary>
public enum FirewallProtocol
{
    Tcp,
    Udp,
    Icmp,
}

/// <summary>Well-known destinations a rule can name instead of an address (<c>specialtarget=</c>).</summary>
public enum SpecialTarget
{
    /// <summary>DNS traffic (TCP and UDP port 53) to the qube's configured DNS servers.</summary>
    Dns,
}

/// <summary>Which of the three wire forms a destination takes: <c>dst4=</c>, <c>dst6=</c> or <c>dsthost=</c>.</summary>
public enum DstHostKind
{
    Ipv4Network,
    Ipv6Network,
    DnsName,
}

/// <summary>Spellings of the enums on the wire, in one place so parsing and printing cannot drift apart.</summary>
internal static class FirewallWords
{
    public static string ToApi(this FirewallAction action) => action switch
    {
        FirewallAction.Accept => "accept",
        FirewallAction.Drop => "drop",
        _ => throw new ArgumentOutOfRangeException(nameof(action), action, null),
    };

    public static string ToApi(this FirewallProtocol protocol) => protocol switch
    {
        FirewallProtocol.Tcp => "tcp",
        FirewallProtocol.Udp => "udp",
        FirewallProtocol.Icmp => "icmp",
        _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, null),
    };

    public static string ToApi(this SpecialTarget target) => target switch
    {
        SpecialTarget.Dns => "dns",
        _ => throw new ArgumentOutOfRangeException(nameof(target), target, null),
    };

    public static FirewallAction? ParseAction(string value) => value switch
    {
        "accept" => FirewallAction.Accept,
        "drop" => FirewallAction.Drop,
        _ => null,
    };

    public static FirewallProtocol? ParseProtocol(string value) => value switch
    {
        "tcp" => FirewallProtocol.Tcp,
        "udp" => FirewallProtocol.Udp,
        "icmp" => FirewallProtocol.Icmp,
        _ => null,
    };

    public static SpecialTarget? ParseSpecialTarget(string value) => value switch
    {
        "dns" => SpecialTarget.Dns,
        _ => null,
    };

    /// <summary>
    /// Parses plain ASCII decimal digits only: <c>long.Parse</c> would also take signs, spaces and other
    /// scripts' digits, none of which the wire form allows.
    /// </summary>
    public static bool TryParseDecimal(string untrusted, int maxDigits, long max, out long value)
    {
        value = 0;
        if (untrusted.Length == 0 || untrusted.Length > maxDigits)
            return false;
        foreach (var c in untrusted)
        {
            if (!char.IsAsciiDigit(c))
                return false;
            value = value * 10 + (c - '0');
        }
        return value <= max;
    }

    /// <summary>
    /// Untrusted text echoed in an error message: control characters escaped and length capped, since the
    /// message ends up on a terminal.
    /// </summary>
    public static string Quote(string untrusted)
    {
        const int maxShown = 120;
        var shown = untrusted.Length > maxShown ? untrusted[..maxShown] : untrusted;
        var sb = new System.Text.StringBuilder(shown.Length + 8);
        sb.Append('\'');
        foreach (var c in shown)
        {
            if (c < 0x20 || c == 0x7f || c > 0x7e)
                sb.Append($"\\x{(int)c:x2}");
            else
                sb.Append(c);
        }
        sb.Append('\'');
        if (shown.Length < untrusted.Length)
            sb.Append("...");
        return sb.ToString();
    }
}
