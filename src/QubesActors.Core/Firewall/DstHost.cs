using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Firewall;

/// <summary>
/// The destination of a rule: an IPv4 or IPv6 network with a prefix length, or a DNS name (docs §4).
/// The address is kept as given (host bits included, as upstream keeps it) in canonical text;
/// matching masks it with the prefix.
/// </summary>
public sealed record DstHost
{
    /// <summary>The longest name DNS can carry.</summary>
    public const int MaxDnsNameLength = 253;

    // The address bits, for matching; IPv4 in the low 32 bits.
    private readonly UInt128 _addressBits;

    private DstHost(DstHostKind kind, string host, int prefixLength, UInt128 addressBits)
    {
        Kind = kind;
        Host = host;
        PrefixLength = prefixLength;
        _addressBits = addressBits;
    }

    public DstHostKind Kind { get; }

    /// <summary>The address in canonical text (dotted quad; RFC 5952 for IPv6), or the DNS name.</summary>
    public string Host { get; }

    /// <summary>32 or 128 for a bare address; 0 for a DNS name.</summary>
    public int PrefixLength { get; }

    /// <summary>The address, or null for a DNS name.</summary>
    public IPAddress? Address => Kind switch
    {
        DstHostKind.Ipv4Network => new IPAddress(ToBytes(_addressBits, 4)),
        DstHostKind.Ipv6Network => new IPAddress(ToBytes(_addressBits, 16)),
        _ => null,
    };

    /// <summary>The key this destination is printed under: <c>dst4</c>, <c>dst6</c> or <c>dsthost</c>.</summary>
    public string ApiKey => Kind switch
    {
        DstHostKind.Ipv4Network => "dst4",
        DstHostKind.Ipv6Network => "dst6",
        _ => "dsthost",
    };

    public string ApiValue => Kind == DstHostKind.DnsName ? Host : $"{Host}/{PrefixLength}";

    public string ToApiString() => $"{ApiKey}={ApiValue}";

    public override string ToString() => ToApiString();

    /// <summary>An IPv4 or IPv6 network. IPv4-mapped IPv6 addresses stay IPv6, as on the wire.</summary>
    public static DstHost FromNetwork(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        switch (address.AddressFamily)
        {
            case AddressFamily.InterNetwork:
                if (prefixLength is < 0 or > 32)
                    throw new QubesValueError($"netmask for IPv4 must be 0-32, not {prefixLength}");
                var v4 = BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
                return new DstHost(DstHostKind.Ipv4Network, FormatIpv4(v4), prefixLength, v4);
            case AddressFamily.InterNetworkV6:
                if (address.ScopeId != 0)
                    throw new QubesValueError("IPv6 scope ids are not allowed in firewall rules");
                if (prefixLength is < 0 or > 128)
                    throw new QubesValueError($"netmask for IPv6 must be 0-128, not {prefixLength}");
                var v6 = BinaryPrimitives.ReadUInt128BigEndian(address.GetAddressBytes());
                return new DstHost(DstHostKind.Ipv6Network, new IPAddress(ToBytes(v6, 16)).ToString(), prefixLength, v6);
            default:
                throw new QubesValueError($"not an IP address family: {address.AddressFamily}");
        }
    }

    /// <summary>A DNS name: lowercase letters, digits, <c>-._</c>.</summary>
    public static DstHost FromDnsName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name.Length > MaxDnsNameLength)
            throw new QubesValueError($"DNS name must be 1-{MaxDnsNameLength} characters");
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.' or '_'))
                throw new QubesValueError(
                    $"invalid host {FirewallWords.Quote(name)} (not an IP address; a DNS name may hold only a-z 0-9 - . _)");
        }
        // Stricter than upstream: digits and dots only is a mistyped IP address (e.g. 010.0.0.1 or 1.2.3.999),
        // and as a name it would never resolve, so a drop rule would silently never drop.
        if (name.All(c => char.IsAsciiDigit(c) || c == '.'))
            throw new QubesValueError($"invalid IP address {FirewallWords.Quote(name)}");
        return new DstHost(DstHostKind.DnsName, name, 0, UInt128.Zero);
    }

    /// <summary>Parses any of the three forms: <c>a.b.c.d[/n]</c>, <c>ipv6[/n]</c> or a DNS name.</summary>
    public static DstHost Parse(string untrustedValue) => Parse(untrustedValue, requiredKind: null);

    /// <param name="requiredKind">Set when the key was <c>dst4</c> or <c>dst6</c>: the value must be of that family.</param>
    internal static DstHost Parse(string untrustedValue, DstHostKind? requiredKind)
    {
        ArgumentNullException.ThrowIfNull(untrustedValue);
        var slash = untrustedValue.IndexOf('/');
        var untrustedHost = slash < 0 ? untrustedValue : untrustedValue[..slash];
        var untrustedPrefix = slash < 0 ? null : untrustedValue[(slash + 1)..];

        DstHost parsed;
        if (TryParseIpv4(untrustedHost, out var v4))
            parsed = FromNetwork(v4, ParsePrefix(untrustedPrefix, 32));
        else if (TryParseIpv6(untrustedHost, out var v6))
            parsed = FromNetwork(v6, ParsePrefix(untrustedPrefix, 128));
        else if (untrustedPrefix is not null)
            throw new QubesValueError($"invalid IP address {FirewallWords.Quote(untrustedHost)}");
        else if (requiredKind is DstHostKind.Ipv4Network or DstHostKind.Ipv6Network)
            throw new QubesValueError($"invalid IP address {FirewallWords.Quote(untrustedHost)}");
        else
            parsed = FromDnsName(untrustedValue);

        if (requiredKind is { } kind && parsed.Kind != kind)
            throw new QubesValueError(kind == DstHostKind.Ipv4Network
                ? $"dst4 needs an IPv4 address, not {FirewallWords.Quote(untrustedValue)}"
                : $"dst6 needs an IPv6 address, not {FirewallWords.Quote(untrustedValue)}");
        return parsed;
    }

    /// <summary>True when <paramref name="address"/> lies in this network; always false for a DNS name.</summary>
    public bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var (kind, bits, width) = address.AddressFamily switch
        {
            AddressFamily.InterNetwork => (DstHostKind.Ipv4Network,
                (UInt128)BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes()), 32),
            AddressFamily.InterNetworkV6 => (DstHostKind.Ipv6Network,
                BinaryPrimitives.ReadUInt128BigEndian(address.GetAddressBytes()), 128),
            _ => (DstHostKind.DnsName, UInt128.Zero, 0),
        };
        if (kind != Kind || kind == DstHostKind.DnsName)
            return false;
        var mask = PrefixLength == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - PrefixLength);
        // Align both to the top of 128 bits so one mask serves both families.
        var shift = 128 - width;
        return ((bits << shift) & mask) == ((_addressBits << shift) & mask);
    }

    private static int ParsePrefix(string? untrustedPrefix, int width)
    {
        if (untrustedPrefix is null)
            return width;
        if (!FirewallWords.TryParseDecimal(untrustedPrefix, 3, width, out var prefix))
            throw new QubesValueError(
                $"invalid prefix length {FirewallWords.Quote(untrustedPrefix)} (expected 0-{width})");
        return (int)prefix;
    }

    /// <summary>
    /// Strict dotted quad, like <c>inet_pton</c>: <c>IPAddress.TryParse</c> would also take <c>1.2</c>,
    /// <c>0x7f.1</c> and octal parts, which mean something else to a human reading the rule.
    /// </summary>
    private static bool TryParseIpv4(string untrusted, out IPAddress address)
    {
        address = IPAddress.None;
        var parts = untrusted.Split('.');
        if (parts.Length != 4)
            return false;
        var bytes = new byte[4];
        for (var i = 0; i < 4; i++)
        {
            var part = parts[i];
            if (part.Length > 1 && part[0] == '0')
                return false;
            if (!FirewallWords.TryParseDecimal(part, 3, 255, out var octet))
                return false;
            bytes[i] = (byte)octet;
        }
        address = new IPAddress(bytes);
        return true;
    }

    private static bool TryParseIpv6(string untrusted, out IPAddress address)
    {
        address = IPAddress.IPv6None;
        // Only hex digits, colons and an embedded dotted quad: no scope ids, brackets or ports.
        if (!untrusted.Contains(':') || !untrusted.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.'))
            return false;
        if (!IPAddress.TryParse(untrusted, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
            return false;
        address = parsed;
        return true;
    }

    private static string FormatIpv4(uint bits) =>
        $"{bits >> 24}.{(bits >> 16) & 0xff}.{(bits >> 8) & 0xff}.{bits & 0xff}";

    private static byte[] ToBytes(UInt128 bits, int length)
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, bits);
        return bytes[(16 - length)..];
    }
}
