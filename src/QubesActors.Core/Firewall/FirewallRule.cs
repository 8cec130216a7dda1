using System.Net;
using System.Text;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Firewall;

/// <summary>
/// One outbound firewall rule of a qube (docs §4): an action and matches that must all apply.
/// Immutable and validated on construction, so a rule that exists is one the server would accept.
/// </summary>
public sealed record FirewallRule
{
    /// <summary>Port DNS traffic goes to; what <c>specialtarget=dns</c> matches.</summary>
    public const int DnsPort = 53;

    private const string CommentKey = "comment=";

    // The keys a line may carry before comment=; dst4/dst6/dsthost share one slot.
    private static readonly string[] OptionKeys =
        ["action", "expire", "dst4", "dst6", "dsthost", "proto", "specialtarget", "dstports", "icmptype"];

    private static readonly long MaxExpireSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    /// <param name="expire">Whole seconds since the epoch; anything finer is truncated, as the wire form has seconds.</param>
    public FirewallRule(
        FirewallAction action,
        DateTimeOffset? expire = null,
        DstHost? dstHost = null,
        FirewallProtocol? proto = null,
        SpecialTarget? specialTarget = null,
        PortRange? dstPorts = null,
        byte? icmpType = null,
        string? comment = null)
    {
        if (!Enum.IsDefined(action))
            throw new QubesValueError($"invalid action {(int)action}");
        if (proto is { } p && !Enum.IsDefined(p))
            throw new QubesValueError($"invalid proto {(int)p}");
        if (specialTarget is { } s && !Enum.IsDefined(s))
            throw new QubesValueError($"invalid specialtarget {(int)s}");
        if (expire is { } e && e.ToUnixTimeSeconds() < 0)
            throw new QubesValueError("expire must not be before 1970-01-01");
        if (dstPorts is not null && proto is not (FirewallProtocol.Tcp or FirewallProtocol.Udp))
            throw new QubesValueError("dstports is valid only with proto=tcp or proto=udp");
        if (icmpType is not null && proto is not FirewallProtocol.Icmp)
            throw new QubesValueError("icmptype is valid only with proto=icmp");
        if (comment is not null)
            ValidateComment(comment);

        Action = action;
        Expire = expire is { } x ? DateTimeOffset.FromUnixTimeSeconds(x.ToUnixTimeSeconds()) : null;
        DstHost = dstHost;
        Proto = proto;
        SpecialTarget = specialTarget;
        DstPorts = dstPorts;
        IcmpType = icmpType;
        Comment = comment;
    }

    public FirewallAction Action { get; }

    /// <summary>When the rule stops applying (UTC, whole seconds); null = never.</summary>
    public DateTimeOffset? Expire { get; }

    public DstHost? DstHost { get; }
    public FirewallProtocol? Proto { get; }
    public SpecialTarget? SpecialTarget { get; }
    public PortRange? DstPorts { get; }
    public byte? IcmpType { get; }
    public string? Comment { get; }

    /// <summary>
    /// Expired from <paramref name="now"/> on: the rule applies strictly before its expire time, so a timer set
    /// to <see cref="Expire"/> finds it expired (no zero-delay reload loop at the boundary).
    /// </summary>
    public bool IsExpired(DateTimeOffset now) => Expire is { } e && now >= e;

    /// <summary>
    /// True when every match of this rule applies to <paramref name="packet"/> (expiry is not considered here).
    /// </summary>
    /// <param name="dnsServers">The qube's DNS servers, for <c>specialtarget=dns</c>.</param>
    /// <param name="resolve">Addresses a DNS name resolved to when the rules were applied; null resolves nothing.</param>
    public bool Matches(
        FirewallPacket packet,
        IReadOnlyCollection<IPAddress> dnsServers,
        Func<string, IEnumerable<IPAddress>>? resolve = null)
    {
        ArgumentNullException.ThrowIfNull(packet);
        ArgumentNullException.ThrowIfNull(dnsServers);

        if (DstHost is { } host)
        {
            var hit = host.Kind == DstHostKind.DnsName
                ? resolve is not null && resolve(host.Host).Contains(packet.Destination)
                : host.Contains(packet.Destination);
            if (!hit)
                return false;
        }
        if (Proto is { } proto && proto != packet.Protocol)
            return false;
        if (SpecialTarget == global::QubesActors.Core.Firewall.SpecialTarget.Dns
            && !(packet.Protocol is FirewallProtocol.Tcp or FirewallProtocol.Udp
                 && packet.Port == DnsPort
                 && dnsServers.Contains(packet.Destination)))
            return false;
        if (DstPorts is { } ports && !(packet.Port is { } port && ports.Contains(port)))
            return false;
        if (IcmpType is { } icmpType && packet.IcmpType != icmpType)
            return false;
        return true;
    }

    /// <summary>
    /// The Admin API text form in the server's key order: action, expire, dst4|dst6|dsthost, proto,
    /// specialtarget, dstports, icmptype, comment.
    /// </summary>
    public string ToApiString()
    {
        var sb = new StringBuilder("action=").Append(Action.ToApi());
        if (Expire is { } expire)
            sb.Append(" expire=").Append(expire.ToUnixTimeSeconds());
        if (DstHost is { } host)
            sb.Append(' ').Append(host.ToApiString());
        if (Proto is { } proto)
            sb.Append(" proto=").Append(proto.ToApi());
        if (SpecialTarget is { } target)
            sb.Append(" specialtarget=").Append(target.ToApi());
        if (DstPorts is { } ports)
            sb.Append(" dstports=").Append(ports);
        if (IcmpType is { } icmpType)
            sb.Append(" icmptype=").Append(icmpType);
        if (Comment is { } comment)
            sb.Append(' ').Append(CommentKey).Append(comment);
        return sb.ToString();
    }

    public override string ToString() => ToApiString();

    /// <summary>
    /// Parses one line of <c>admin.vm.firewall.Set</c>. Keys in any order, <c>comment=</c> last (it may hold spaces).
    /// </summary>
    /// <exception cref="ProtocolError">The line is not ASCII.</exception>
    /// <exception cref="QubesValueError">Anything else wrong; the message quotes the line.</exception>
    public static FirewallRule Parse(string untrustedLine) => Parse(untrustedLine, lineNumber: null);

    internal static FirewallRule Parse(string untrustedLine, int? lineNumber)
    {
        ArgumentNullException.ThrowIfNull(untrustedLine);
        var where = lineNumber is { } n ? $" on line {n}" : "";
        if (!Ascii.IsValid(untrustedLine))
            throw new ProtocolError($"Firewall rule{where} is not ASCII");
        try
        {
            return ParseAscii(untrustedLine);
        }
        catch (QubesValueError e)
        {
            // One message naming the line and the reason; the parts below only know the reason.
            throw new QubesValueError($"Invalid firewall rule{where} {FirewallWords.Quote(untrustedLine)}: {e.Message}");
        }
    }

    private static FirewallRule ParseAscii(string untrustedLine)
    {
        // comment= takes the rest of the line, spaces included, so it is cut off before splitting on spaces.
        string untrustedOptions;
        string? untrustedComment = null;
        if (untrustedLine.StartsWith(CommentKey, StringComparison.Ordinal))
        {
            untrustedOptions = "";
            untrustedComment = untrustedLine[CommentKey.Length..];
        }
        else
        {
            var at = untrustedLine.IndexOf(" " + CommentKey, StringComparison.Ordinal);
            untrustedOptions = at < 0 ? untrustedLine : untrustedLine[..at];
            untrustedComment = at < 0 ? null : untrustedLine[(at + 1 + CommentKey.Length)..];
        }

        FirewallAction? action = null;
        DateTimeOffset? expire = null;
        DstHost? dstHost = null;
        FirewallProtocol? proto = null;
        SpecialTarget? specialTarget = null;
        PortRange? dstPorts = null;
        byte? icmpType = null;
        var seen = new Dictionary<string, string>(StringComparer.Ordinal); // slot -> key as written

        foreach (var untrustedOption in untrustedOptions.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = untrustedOption.IndexOf('=');
            if (eq < 0)
                throw new QubesValueError($"{FirewallWords.Quote(untrustedOption)} is not key=value");
            var untrustedKey = untrustedOption[..eq];
            var untrustedValue = untrustedOption[(eq + 1)..];
            if (!OptionKeys.Contains(untrustedKey))
                throw new QubesValueError($"unknown key {FirewallWords.Quote(untrustedKey)}");
            var key = untrustedKey;
            var slot = key is "dst4" or "dst6" ? "dsthost" : key;
            if (seen.TryGetValue(slot, out var earlier))
                throw new QubesValueError(earlier == key
                    ? $"duplicated key '{key}'"
                    : $"duplicated destination: '{key}' after '{earlier}' (one of dst4, dst6, dsthost per rule)");
            seen.Add(slot, key);
            if (untrustedValue.Length == 0)
                throw new QubesValueError($"empty value for '{key}'");

            switch (key)
            {
                case "action":
                    action = FirewallWords.ParseAction(untrustedValue)
                        ?? throw Invalid(key, untrustedValue, "accept or drop");
                    break;
                case "expire":
                    // At most 12 digits: past year 9999 DateTimeOffset cannot hold it anyway.
                    if (!FirewallWords.TryParseDecimal(untrustedValue, 12, MaxExpireSeconds, out var seconds))
                        throw Invalid(key, untrustedValue, "unix time in seconds");
                    expire = DateTimeOffset.FromUnixTimeSeconds(seconds);
                    break;
                case "dst4":
                    dstHost = DstHost.Parse(untrustedValue, DstHostKind.Ipv4Network);
                    break;
                case "dst6":
                    dstHost = DstHost.Parse(untrustedValue, DstHostKind.Ipv6Network);
                    break;
                case "dsthost":
                    dstHost = DstHost.Parse(untrustedValue);
                    break;
                case "proto":
                    proto = FirewallWords.ParseProtocol(untrustedValue)
                        ?? throw Invalid(key, untrustedValue, "tcp, udp or icmp");
                    break;
                case "specialtarget":
                    specialTarget = FirewallWords.ParseSpecialTarget(untrustedValue)
                        ?? throw Invalid(key, untrustedValue, "dns");
                    break;
                case "dstports":
                    dstPorts = PortRange.Parse(untrustedValue);
                    break;
                case "icmptype":
                    if (!FirewallWords.TryParseDecimal(untrustedValue, 3, byte.MaxValue, out var type))
                        throw Invalid(key, untrustedValue, "0-255");
                    icmpType = (byte)type;
                    break;
            }
        }

        if (untrustedComment is not null && untrustedComment.Contains('='))
            throw new QubesValueError("comment= must be the last key (and a comment cannot hold '=')");
        if (action is null)
            throw new QubesValueError("missing action=");
        return new FirewallRule(action.Value, expire, dstHost, proto, specialTarget, dstPorts, icmpType, untrustedComment);
    }

    private static QubesValueError Invalid(string key, string untrustedValue, string expected) =>
        new($"invalid {key} {FirewallWords.Quote(untrustedValue)} (expected {expected})");

    private static void ValidateComment(string comment)
    {
        if (comment.Length == 0)
            throw new QubesValueError("empty value for 'comment'");
        foreach (var c in comment)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is ' ' or ':' or ';' or ',' or '.' or '/' or '-' or '_' or '[' or ']'))
                throw new QubesValueError(
                    $"invalid character {FirewallWords.Quote(c.ToString())} in comment (allowed: letters, digits, space, :;,./-_[])");
        }
    }
}
