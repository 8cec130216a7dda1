using System.Text.RegularExpressions;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>A port a backend qube exposes, e.g. <c>sys-usb:2-1</c> or <c>dom0:00_14.0</c>; either part may be <c>*</c>.</summary>
public sealed partial record DevicePort
{
    public const string Wildcard = "*";

    public DevicePort(string backend, string portId)
    {
        if (backend != Wildcard && !QubeName().IsMatch(backend))
            throw new ProtocolError($"Invalid backend qube name: '{backend}'");
        if (portId != Wildcard && !PortIdPattern().IsMatch(portId))
            throw new ProtocolError($"Invalid port id: '{portId}'");
        Backend = backend;
        PortId = portId;
    }

    public static DevicePort Any { get; } = new(Wildcard, Wildcard);

    public string Backend { get; }
    public string PortId { get; }

    public bool IsAnyBackend => Backend == Wildcard;
    public bool IsAnyPort => PortId == Wildcard;

    /// <summary>True when this (possibly wildcard) port covers <paramref name="concrete"/>.</summary>
    public bool Matches(DevicePort concrete) =>
        (IsAnyBackend || Backend == concrete.Backend) && (IsAnyPort || PortId == concrete.PortId);

    /// <summary>CLI form <c>BACKEND:PORT</c>.</summary>
    public override string ToString() => $"{Backend}:{PortId}";

    /// <summary>API argument form <c>BACKEND+PORT</c>; qrexec arguments cannot carry <c>*</c>, so it is <c>_</c>.</summary>
    public string ToApiArgument() => $"{WildcardToQarg(Backend)}+{WildcardToQarg(PortId)}";

    internal static string WildcardToQarg(string part) => part == Wildcard ? "_" : part;
    internal static string QargToWildcard(string part) => part == "_" ? Wildcard : part;

    // Qube names as qubes/utils.py validates them (letter first, then letters, digits, '_', '.', '-'; max 31).
    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_.-]{0,30}$")]
    internal static partial Regex QubeName();

    // Port ids travel in qrexec arguments: '00_14.0', '2-1.4', 'sda1'.
    [GeneratedRegex(@"^[A-Za-z0-9_.-]+$")]
    private static partial Regex PortIdPattern();
}

/// <summary>
/// The identity a device presents (vendor:product:serial:interfaces, e.g. <c>1234:5678:serial:u012345</c>),
/// or <c>*</c> for any device.
/// </summary>
public sealed record DeviceId
{
    public const string Wildcard = "*";

    /// <summary>What upstream reports for a device that presents no identity.</summary>
    public const string UnknownValue = "0000:0000::?******";

    // In qrexec arguments '?******' (unknown interface) is spelled with seven underscores.
    private const string UnknownInterface = "?******";
    private const string UnknownInterfaceQarg = "_______";

    public DeviceId(string value)
    {
        // '+' separates API argument parts and whitespace/quotes would break listings.
        if (value.Length == 0 || value.Any(c => c is <= ' ' or > '~' or '+' or '\'' or '"' or '\\'))
            throw new ProtocolError($"Invalid device id: '{value}'");
        Value = value;
    }

    public static DeviceId Any { get; } = new(Wildcard);
    public static DeviceId Unknown { get; } = new(UnknownValue);

    public string Value { get; }
    public bool IsAny => Value == Wildcard;

    public bool Matches(DeviceId concrete) => IsAny || Value == concrete.Value;

    public override string ToString() => Value;

    /// <summary>The qrexec-argument spelling: ':' → '+', '?******' → '_______', '*' → '_'.</summary>
    public string ToApiArgument() =>
        Value.Replace(":", "+").Replace(UnknownInterface, UnknownInterfaceQarg).Replace("*", "_");

    internal static DeviceId FromApiArgument(string part) =>
        part is "" or "_" ? Any : new(part.Replace("+", ":").Replace(UnknownInterfaceQarg, UnknownInterface));
}

/// <summary>A device address: a port and a device identity, each possibly <c>*</c> (upstream <c>VirtualDevice</c>).</summary>
public sealed record VirtualDevice(DevicePort Port, DeviceId DeviceId)
{
    public static VirtualDevice Any { get; } = new(DevicePort.Any, DeviceId.Any);

    public VirtualDevice(string backend, string portId, string deviceId = DeviceId.Wildcard)
        : this(new DevicePort(backend, portId), new DeviceId(deviceId)) { }

    public string Backend => Port.Backend;
    public string PortId => Port.PortId;

    public bool IsConcrete => !Port.IsAnyBackend && !Port.IsAnyPort && !DeviceId.IsAny;

    /// <summary>True when this address (possibly with wildcards) covers <paramref name="concrete"/>.</summary>
    public bool Matches(VirtualDevice concrete) => Port.Matches(concrete.Port) && DeviceId.Matches(concrete.DeviceId);

    /// <summary>
    /// Upstream's order for auto-attachment, most specific highest: <c>port:devid</c> &gt; <c>port:*</c> &gt;
    /// <c>*:devid</c> &gt; <c>*:*</c>.
    /// </summary>
    public int Specificity => (Port.IsAnyPort ? 0 : 2) + (DeviceId.IsAny ? 0 : 1);

    /// <summary>CLI form <c>BACKEND:PORT:DEVICE_ID</c> (always with the device id, <c>*</c> if any).</summary>
    public override string ToString() => $"{Port}:{DeviceId}";

    /// <summary>API argument form <c>BACKEND+PORT+DEVICE_ID</c>, in qrexec-argument spelling.</summary>
    public string ToApiArgument() => $"{Port.ToApiArgument()}+{DeviceId.ToApiArgument()}";

    /// <summary>Parses <c>BACKEND:PORT[:DEVICE_ID]</c>; the device id may itself contain colons.</summary>
    /// <exception cref="ProtocolError">Malformed address.</exception>
    public static VirtualDevice ParseCli(string untrusted)
    {
        var parts = untrusted.Split(':', 3);
        if (parts.Length < 2)
            throw new ProtocolError($"Invalid device address, expected BACKEND:PORT[:DEVICE_ID]: '{untrusted}'");
        var deviceId = parts.Length == 3 && parts[2].Length > 0 ? new DeviceId(parts[2]) : DeviceId.Any;
        return new(new DevicePort(parts[0], parts[1]), deviceId);
    }

    /// <summary>Parses the API argument <c>BACKEND+PORT[+DEVICE_ID]</c>, where <c>_</c> stands for <c>*</c>.</summary>
    /// <exception cref="ProtocolError">Malformed argument.</exception>
    public static VirtualDevice ParseApiArgument(string untrusted)
    {
        var parts = untrusted.Split('+', 3);
        if (parts.Length < 2)
            throw new ProtocolError($"Invalid device argument, expected BACKEND+PORT[+DEVICE_ID]: '{untrusted}'");
        var port = new DevicePort(DevicePort.QargToWildcard(parts[0]), DevicePort.QargToWildcard(parts[1]));
        return new(port, DeviceId.FromApiArgument(parts.Length == 3 ? parts[2] : ""));
    }

    public static bool TryParseCli(string untrusted, out VirtualDevice? device) => TryParse(ParseCli, untrusted, out device);

    public static bool TryParseApiArgument(string untrusted, out VirtualDevice? device) =>
        TryParse(ParseApiArgument, untrusted, out device);

    private static bool TryParse(Func<string, VirtualDevice> parse, string untrusted, out VirtualDevice? device)
    {
        try
        {
            device = parse(untrusted);
            return true;
        }
        catch (ProtocolError)
        {
            device = null;
            return false;
        }
    }
}
