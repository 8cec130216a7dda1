using System.Net;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Firewall;

/// <summary>
/// What the evaluator needs to know of an outbound packet: where it goes, its protocol, and its destination
/// port (TCP/UDP) or ICMP type.
/// </summary>
public sealed record FirewallPacket
{
    public FirewallPacket(IPAddress destination, FirewallProtocol protocol, int? port = null, byte? icmpType = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (!Enum.IsDefined(protocol))
            throw new QubesValueError($"invalid protocol {(int)protocol}");
        if (port is < 0 or > PortRange.MaxPort)
            throw new QubesValueError($"port out of range 0-{PortRange.MaxPort}: {port}");
        if (port is not null && protocol == FirewallProtocol.Icmp)
            throw new QubesValueError("an ICMP packet has no port");
        if (icmpType is not null && protocol != FirewallProtocol.Icmp)
            throw new QubesValueError("only an ICMP packet has an ICMP type");
        Destination = destination;
        Protocol = protocol;
        Port = port;
        IcmpType = icmpType;
    }

    public static FirewallPacket Tcp(IPAddress destination, int port) => new(destination, FirewallProtocol.Tcp, port);
    public static FirewallPacket Udp(IPAddress destination, int port) => new(destination, FirewallProtocol.Udp, port);
    public static FirewallPacket Icmp(IPAddress destination, byte icmpType) => new(destination, FirewallProtocol.Icmp, icmpType: icmpType);

    public IPAddress Destination { get; }
    public FirewallProtocol Protocol { get; }

    /// <summary>Destination port, TCP and UDP only.</summary>
    public int? Port { get; }

    /// <summary>ICMP type, ICMP only.</summary>
    public byte? IcmpType { get; }
}
