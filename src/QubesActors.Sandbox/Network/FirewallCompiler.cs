using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using QubesActors.Core.Firewall;

namespace QubesActors.Sandbox.Network;

/// <summary>A client's chain compiled for its netvm's firewall table.</summary>
/// <param name="Script">An <c>nft -f</c> script that replaces this one chain atomically and nothing else.</param>
/// <param name="NextExpiry">When the chain must be compiled again because a rule expires; null = never.</param>
/// <param name="FailedClosed">
/// True when a rule could not be compiled (a DNS name without an IPv4 address): the chain then drops everything,
/// as upstream's qubes-firewall does for a client whose rules it cannot apply.
/// </param>
/// <param name="Problems">Why it failed closed, or which rules were left out (IPv6 only, never matching).</param>
public sealed record CompiledClientChain(string Script, DateTimeOffset? NextExpiry, bool FailedClosed, IReadOnlyList<string> Problems);

/// <summary>
/// Qubes firewall rules (docs §4) to nftables text for the client's netvm. Pure: names are resolved by the caller
/// beforehand (<see cref="NamesToResolve"/>) and handed in, so the result depends only on the arguments.
/// </summary>
/// <remarks>
/// The netvm's <c>table inet qubes-firewall</c> has a <c>forward</c> base chain (policy drop) that sends a
/// client's new packets, by ingress interface and source address, through a verdict map to the client's
/// <c>qbs-</c> chain. Upstream writes one <c>jump</c> rule per client; the map is the same match but lets one
/// client be added or removed by element, without looking up rule handles, and looks up in constant time with
/// 1,000 clients loaded.
/// </remarks>
public static class FirewallCompiler
{
    public const string Table = "qubes-firewall";
    public const string NatTable = "qubes-nat";
    public const string ClientMap = "clients";
    public const string VirtualDnsSet = "virtual-dns";
    public const string DnsProtocolsSet = "dns-protocols";
    private const string T = "inet " + Table;

    /// <summary>The DNS names the active rules name: resolve these, then <see cref="CompileClientChain"/>.</summary>
    public static IReadOnlyList<string> NamesToResolve(IEnumerable<FirewallRule> rules, DateTimeOffset now) =>
        rules.Where(r => !r.IsExpired(now) && r.DstHost is { Kind: DstHostKind.DnsName })
            .Select(r => r.DstHost!.Host).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// The script that replaces <paramref name="link"/>'s chain: created if missing, flushed, refilled with the
    /// unexpired rules in order, then the fixed drop; the client's map entry (re)pointed at it. One transaction.
    /// </summary>
    /// <param name="rules">The qube's rules; <see cref="FirewallRules.Default"/> (accept all) for a qube that has none.</param>
    /// <param name="resolved">Addresses each DNS name resolved to when the rules are applied; a missing name fails closed.</param>
    public static CompiledClientChain CompileClientChain(
        LinkPlan link,
        FirewallRules rules,
        DateTimeOffset now,
        IReadOnlyDictionary<string, IReadOnlyList<IPAddress>> resolved)
    {
        ArgumentNullException.ThrowIfNull(link);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(resolved);
        var problems = new List<string>();
        var ruleLines = new List<string>();
        var failedClosed = false;
        foreach (var rule in rules)
        {
            if (rule.IsExpired(now))
                continue;
            var (line, problem, fatal) = CompileRule(rule, link.Dns, resolved);
            if (problem is not null)
                problems.Add($"{rule.ToApiString()}: {problem}");
            if (fatal)
            {
                failedClosed = true;
                break;
            }
            if (line is not null)
                ruleLines.Add(line);
        }
        if (failedClosed)
            ruleLines.Clear();

        var chain = $"{T} {link.ChainName}";
        var sb = new StringBuilder();
        sb.Append("add chain ").Append(chain).Append('\n');
        sb.Append("flush chain ").Append(chain).Append('\n');
        foreach (var line in ruleLines)
            sb.Append("add rule ").Append(chain).Append(' ').Append(line).Append('\n');
        sb.Append("add rule ").Append(chain).Append(" drop\n"); // fixed policy after the rules (docs §4)
        sb.Append("add element ").Append(T).Append(' ').Append(ClientMap).Append(" { ").Append(MapKey(link))
            .Append(" : jump ").Append(link.ChainName).Append(" }\n");
        // An expired rule is already gone; the caller recompiles when the next one expires.
        var nextExpiry = failedClosed ? null : FirewallRuleSet.NextExpiry(rules, now);
        return new CompiledClientChain(sb.ToString(), nextExpiry, failedClosed, problems);
    }

    /// <summary>
    /// Removes a client's map entry and chain. Idempotent: the entry and the chain are added first inside the same
    /// transaction, so removing what is not there is not an error.
    /// </summary>
    public static string RemoveClientChain(LinkPlan link)
    {
        ArgumentNullException.ThrowIfNull(link);
        var chain = $"{T} {link.ChainName}";
        var element = $"{T} {ClientMap} {{ {MapKey(link)} }}";
        return $"add chain {chain}\n"
            + $"add element {T} {ClientMap} {{ {MapKey(link)} : jump {link.ChainName} }}\n"
            + $"delete element {element}\n"
            + $"flush chain {chain}\n"
            + $"delete chain {chain}\n";
    }

    /// <summary>
    /// The netvm's tables, replaced whole: only when the netvm's namespace is set up, before any client is linked.
    /// Forward: established/related accepted, invalid dropped, client to client dropped (qubes are isolated from
    /// each other, as upstream), each client's new packets to its chain, everything else (spoofed sources, new
    /// connections towards clients) dropped by the policy. Input: a client may not open connections to the netvm
    /// itself. NAT: the virtual DNS redirected, masquerade out of eth0.
    /// </summary>
    public static string NetVmBaseScript(NetVmPlan netVm)
    {
        ArgumentNullException.ThrowIfNull(netVm);
        var vifs = $"\"{NetworkNaming.VifPrefix}*\"";
        var uplink = $"\"{NetworkNaming.ClientInterface}\"";
        var sb = new StringBuilder();
        // "add" then "delete" makes the delete succeed whether or not the table exists.
        sb.Append($"add table {T}\ndelete table {T}\nadd table ip {NatTable}\ndelete table ip {NatTable}\n");
        sb.Append($"table {T} {{\n");
        sb.Append($"  map {ClientMap} {{ type ifname . ipv4_addr : verdict; }}\n");
        // Named once here rather than as an anonymous set in every client's DNS rule: nft reads every set of the
        // table before each transaction, and 1,000 clients' anonymous sets made a one-chain update a third slower.
        sb.Append($"  set {VirtualDnsSet} {{ type ipv4_addr; elements = {Set(VirtualDns.Servers)}; }}\n");
        sb.Append($"  set {DnsProtocolsSet} {{ type inet_proto; elements = {{ tcp, udp }}; }}\n");
        sb.Append("  chain forward {\n    type filter hook forward priority filter; policy drop;\n");
        sb.Append("    ct state established,related accept\n    ct state invalid drop\n");
        sb.Append($"    iifname {vifs} oifname {vifs} drop\n");
        if (netVm.DropVirtualDns)
            sb.Append($"    ip daddr @{VirtualDnsSet} drop\n");
        sb.Append($"    iifname . ip saddr vmap @{ClientMap}\n  }}\n");
        sb.Append("  chain input {\n    type filter hook input priority filter; policy accept;\n");
        sb.Append($"    iifname {vifs} ct state established,related accept\n");
        sb.Append($"    iifname {vifs} meta l4proto icmp accept\n");
        sb.Append($"    iifname {vifs} drop\n  }}\n}}\n");
        sb.Append($"table ip {NatTable} {{\n");
        sb.Append("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n");
        foreach (var redirect in netVm.DnsRedirects)
            sb.Append($"    iifname {vifs} ip daddr {redirect.Virtual} meta l4proto {{ tcp, udp }} th dport {VirtualDns.Port} dnat to {redirect.Upstream}\n");
        sb.Append("  }\n");
        sb.Append("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        sb.Append($"    oifname {uplink} masquerade\n  }}\n}}\n");
        return sb.ToString();
    }

    private static string MapKey(LinkPlan link) => $"\"{link.VifName}\" . {link.ClientIp}";

    /// <returns>The rule text without the <c>add rule</c> prefix, or null when it is left out; a problem; whether it is fatal.</returns>
    private static (string? Line, string? Problem, bool Fatal) CompileRule(
        FirewallRule rule,
        IReadOnlyList<IPAddress> clientDns,
        IReadOnlyDictionary<string, IReadOnlyList<IPAddress>> resolved)
    {
        var matches = new List<string>();
        if (rule.DstHost is { } host)
        {
            switch (host.Kind)
            {
                case DstHostKind.Ipv4Network:
                    matches.Add($"ip daddr {Ipv4Network(host)}");
                    break;
                case DstHostKind.Ipv6Network:
                    // Clients have no IPv6 (the forward chain drops it), so the rule can never match; as upstream, skipped.
                    return (null, "IPv6 rule left out (no IPv6 is forwarded)", false);
                default:
                    var addresses = resolved.TryGetValue(host.Host, out var found)
                        ? found.Where(a => a.AddressFamily == AddressFamily.InterNetwork).Distinct().ToList()
                        : [];
                    if (addresses.Count == 0)
                        return (null, $"{host.Host} did not resolve to an IPv4 address; all traffic dropped", true);
                    matches.Add($"ip daddr {Set(addresses)}");
                    break;
            }
        }

        if (rule.SpecialTarget == SpecialTarget.Dns)
        {
            if (rule.Proto == FirewallProtocol.Icmp)
                return (null, "specialtarget=dns with proto=icmp never matches; left out", false);
            matches.Add(rule.Proto is { } p ? $"meta l4proto {Word(p)}" : $"meta l4proto @{DnsProtocolsSet}");
            matches.Add($"th dport {VirtualDns.Port}");
            // The original destination: the edge netvm has already redirected it to the upstream resolver (DNAT).
            matches.Add(clientDns.SequenceEqual(VirtualDns.Servers) ? $"ct original ip daddr @{VirtualDnsSet}" : $"ct original ip daddr {Set(clientDns)}");
            if (rule.DstPorts is { } dnsPorts)
                matches.Add($"th dport {Ports(dnsPorts)}");
        }
        else if (rule.Proto is { } proto)
        {
            matches.Add($"meta l4proto {Word(proto)}");
            if (rule.DstPorts is { } ports)
                matches.Add($"{Word(proto)} dport {Ports(ports)}");
            if (rule.IcmpType is { } icmpType)
                matches.Add($"icmp type {icmpType}");
        }

        matches.Add(rule.Action == FirewallAction.Accept ? "accept" : "drop");
        return (string.Join(' ', matches), null, false);
    }

    private static string Word(FirewallProtocol proto) => proto switch
    {
        FirewallProtocol.Tcp => "tcp",
        FirewallProtocol.Udp => "udp",
        FirewallProtocol.Icmp => "icmp",
        _ => throw new ArgumentOutOfRangeException(nameof(proto), proto, null),
    };

    private static string Ports(PortRange ports) => ports.First == ports.Last ? $"{ports.First}" : $"{ports.First}-{ports.Last}";

    private static string Set(IReadOnlyList<IPAddress> addresses) =>
        addresses.Count == 1 ? addresses[0].ToString() : "{ " + string.Join(", ", addresses) + " }";

    /// <summary>The network address: rules keep host bits (10.1.2.3/16), which nft refuses in a prefix.</summary>
    private static string Ipv4Network(DstHost host)
    {
        var bits = BinaryPrimitives.ReadUInt32BigEndian(host.Address!.GetAddressBytes());
        var mask = host.PrefixLength == 0 ? 0u : uint.MaxValue << (32 - host.PrefixLength);
        var network = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(network, bits & mask);
        var address = new IPAddress(network);
        return host.PrefixLength == 32 ? address.ToString() : $"{address}/{host.PrefixLength}";
    }
}
