using System.Net;
using FsCheck;
using FsCheck.Fluent;

namespace QubesActors.Core.Tests.Firewall;

// Inside the namespace so the type QubesActors.Core.Firewall.Firewall wins over this test namespace of the same name.
using QubesActors.Core.Firewall;

/// <summary>Generators of valid rules, rule lists and packets, and of near-miss rule text.</summary>
public static class FirewallGenerators
{
    public const string CommentCharacters =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :;,./-_[]";

    private const string DnsLabelCharacters = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    private const string Letters = "abcdefghijklmnopqrstuvwxyz";

    // Upper bound of expire: 9999-12-31T23:59:59Z, the last second DateTimeOffset holds.
    private const long MaxExpireSeconds = 253402300799;

    public static Gen<T?> Optional<T>(Gen<T> gen) where T : struct =>
        Gen.Frequency((1, Gen.Constant<T?>(null)), (2, gen.Select(x => (T?)x)));

    public static Gen<T?> OptionalRef<T>(Gen<T> gen) where T : class =>
        Gen.Frequency((1, Gen.Constant<T?>(null)), (2, gen.Select(x => (T?)x)));

    public static Gen<string> StringOf(string alphabet, int minLength, int maxLength) =>
        from length in Gen.Choose(minLength, maxLength)
        from chars in Gen.Elements(alphabet.ToCharArray()).ArrayOf(length)
        select new string(chars);

    // Mostly zero bytes, so IPv6 addresses exercise :: compression and IPv4-mapped forms.
    private static Gen<byte> AddressByte =>
        Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Constant(255)), (3, Gen.Choose(0, 255))).Select(b => (byte)b);

    public static Gen<IPAddress> Ipv4Address =>
        AddressByte.ArrayOf(4).Select(bytes => new IPAddress(bytes));

    public static Gen<IPAddress> Ipv6Address =>
        AddressByte.ArrayOf(16).Select(bytes => new IPAddress(bytes));

    public static Gen<IPAddress> AnyAddress => Gen.OneOf(Ipv4Address, Ipv6Address);

    public static Gen<string> DnsName =>
        from labels in StringOf(DnsLabelCharacters, 1, 10).ListOf().Select(l => l.Take(3))
        from last in StringOf(Letters, 1, 6) // a letter in the last label: never looks like an IP address
        select string.Join('.', labels.Append(last));

    public static Gen<DstHost> Destination => Gen.OneOf(
        from address in Ipv4Address
        from prefix in Gen.Choose(0, 32)
        select DstHost.FromNetwork(address, prefix),
        from address in Ipv6Address
        from prefix in Gen.Choose(0, 128)
        select DstHost.FromNetwork(address, prefix),
        DnsName.Select(DstHost.FromDnsName));

    public static Gen<PortRange> Ports =>
        from a in Gen.Choose(0, 65535)
        from b in Gen.Choose(0, 65535)
        select new PortRange(Math.Min(a, b), Math.Max(a, b));

    public static Gen<DateTimeOffset> Expire =>
        Gen.Frequency(
            (3, Gen.Choose(0, int.MaxValue).Select(s => (long)s)),
            (1, Gen.Choose(0, (int)(MaxExpireSeconds / 100_000)).Select(s => Math.Min(s * 100_000L + 99_999, MaxExpireSeconds))))
        .Select(DateTimeOffset.FromUnixTimeSeconds);

    public static Gen<string> Comment => StringOf(CommentCharacters, 1, 30);

    // proto decides which of dstports / icmptype may be present.
    private static Gen<(FirewallProtocol? Proto, PortRange? Ports, byte? IcmpType)> ProtoAndPorts => Gen.OneOf(
        Gen.Constant<(FirewallProtocol?, PortRange?, byte?)>((null, null, null)),
        from proto in Gen.Elements(FirewallProtocol.Tcp, FirewallProtocol.Udp)
        from ports in Optional(Ports)
        select ((FirewallProtocol?)proto, ports, (byte?)null),
        from type in Optional(Gen.Choose(0, 255).Select(t => (byte)t))
        select ((FirewallProtocol?)FirewallProtocol.Icmp, (PortRange?)null, type));

    public static Gen<FirewallRule> Rule =>
        from action in Gen.Elements(FirewallAction.Accept, FirewallAction.Drop)
        from expire in Optional(Expire)
        from dst in OptionalRef(Destination)
        from protoAndPorts in ProtoAndPorts
        from special in Gen.Frequency((3, Gen.Constant<SpecialTarget?>(null)), (1, Gen.Constant<SpecialTarget?>(SpecialTarget.Dns)))
        from comment in OptionalRef(Comment)
        select new FirewallRule(action, expire, dst, protoAndPorts.Proto, special, protoAndPorts.Ports, protoAndPorts.IcmpType, comment);

    public static Gen<FirewallRules> Rules => Rule.ListOf().Select(l => new FirewallRules(l.Take(8)));

    public static Gen<FirewallPacket> Packet => Gen.OneOf(
        from dst in AnyAddress
        from proto in Gen.Elements(FirewallProtocol.Tcp, FirewallProtocol.Udp)
        from port in Gen.Frequency((1, Gen.Constant(53)), (4, Gen.Choose(0, 65535)))
        select new FirewallPacket(dst, proto, port),
        from dst in AnyAddress
        from type in Gen.Choose(0, 255)
        select FirewallPacket.Icmp(dst, (byte)type));

    /// <summary>
    /// Text that looks like a rule but is often not: real and made-up keys, valid and broken values, junk
    /// separators, in any order. Reaches the value parsers, unlike uniformly random strings.
    /// </summary>
    public static Gen<string> NearMissLine
    {
        get
        {
            var keys = Gen.Elements("action", "expire", "dst4", "dst6", "dsthost", "proto", "specialtarget",
                "dstports", "icmptype", "comment", "Action", "", "port", "dst");
            var values = Gen.Elements("accept", "drop", "tcp", "udp", "icmp", "dns", "80", "1-1024", "1024-1",
                "65536", "-1", "+5", "256", "0", "2099450306", "99999999999999999999", "10.0.0.0/8", "1.2.3.4/33",
                "1.2.3", "01.2.3.4", "::1", "::1/129", "fe80::1%eth0", "[::1]", "example.com", "Example.com",
                "1.2.3.999", "a/b", "/", "", "=", "x=y", "No ICMP", "caf\u00e9", "\t", "\r", "\0");
            var option = Gen.OneOf(
                from k in keys from v in values select $"{k}={v}",
                keys,
                values);
            var separators = Gen.Elements(" ", " ", " ", "  ", "\t", "\n");
            return from count in Gen.Choose(0, 7)
                   from options in option.ArrayOf(count)
                   from seps in separators.ArrayOf(count)
                   select string.Concat(options.Zip(seps, (o, s) => o + s));
        }
    }
}

/// <summary>Arbitraries for [Property] parameters of firewall types.</summary>
public static class FirewallArbitraries
{
    public static Arbitrary<FirewallRule> Rule() => FirewallGenerators.Rule.ToArbitrary();
    public static Arbitrary<FirewallRules> Rules() => FirewallGenerators.Rules.ToArbitrary();
    public static Arbitrary<FirewallPacket> Packet() => FirewallGenerators.Packet.ToArbitrary();
}
