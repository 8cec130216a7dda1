using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// How a device is tied to its frontend: <see cref="Manual"/> for a plain (temporary) attachment, the others
/// for persistent assignments.
/// </summary>
public enum AssignmentMode
{
    Manual,
    AskToAttach,
    AutoAttach,
    Required,
}

public static class AssignmentModes
{
    public static string ApiName(this AssignmentMode mode) => mode switch
    {
        AssignmentMode.Manual => "manual",
        AssignmentMode.AskToAttach => "ask-to-attach",
        AssignmentMode.AutoAttach => "auto-attach",
        AssignmentMode.Required => "required",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
    };

    /// <summary>Modes an assignment may have; <see cref="AssignmentMode.Manual"/> is only for attachments.</summary>
    public static bool IsAssignable(this AssignmentMode mode) => mode != AssignmentMode.Manual;

    /// <exception cref="QubesUnrecognizedDeviceAssignmentMode">Not one of the four names.</exception>
    public static AssignmentMode Parse(string untrusted) => untrusted switch
    {
        "manual" => AssignmentMode.Manual,
        "ask-to-attach" => AssignmentMode.AskToAttach,
        "auto-attach" => AssignmentMode.AutoAttach,
        "required" => AssignmentMode.Required,
        _ => throw new QubesUnrecognizedDeviceAssignmentMode("Invalid assignment mode"),
    };

    /// <summary>The payload of <c>Set.assignment</c>: upstream accepts only the three assignable modes there.</summary>
    /// <exception cref="QubesUnrecognizedDeviceAssignmentMode">Anything else, <c>manual</c> included.</exception>
    public static AssignmentMode ParseForSetAssignment(string untrusted)
    {
        var mode = Parse(untrusted);
        return mode.IsAssignable() ? mode : throw new QubesUnrecognizedDeviceAssignmentMode("Invalid assignment mode");
    }
}

/// <summary>
/// A device (address, possibly with wildcards) tied to a frontend qube, with a mode and options
/// (upstream <c>DeviceAssignment</c>). Also describes a current attachment (then concrete, mode as attached).
/// </summary>
public sealed record DeviceAssignment
{
    public DeviceAssignment(DeviceClass devclass, VirtualDevice device, string? frontend = null,
        AssignmentMode mode = AssignmentMode.Manual, DeviceOptions? options = null)
    {
        if (frontend is not null && !DevicePort.QubeName().IsMatch(frontend))
            throw new ProtocolError($"Invalid qube name: '{frontend}'");
        Class = devclass;
        Device = device;
        Frontend = frontend;
        Mode = mode;
        Options = options ?? DeviceOptions.Empty;
    }

    public DeviceClass Class { get; }
    public VirtualDevice Device { get; init; }
    public string? Frontend { get; }
    public AssignmentMode Mode { get; init; }
    public DeviceOptions Options { get; init; }

    public DevicePort Port => Device.Port;
    public DeviceId DeviceId => Device.DeviceId;

    public bool IsRequired => Mode == AssignmentMode.Required;

    /// <summary>Same class and address: the identity upstream compares assignments by (mode and options aside).</summary>
    public bool SameDevice(DeviceClass devclass, VirtualDevice device) => Class == devclass && Device == device;

    /// <summary>True when this assignment covers the exposed <paramref name="device"/>.</summary>
    public bool Matches(DeviceInfo device) => Class == device.Class && Device.Matches(device.Address);

    /// <summary>CLI form of the address, as upstream prints an assignment.</summary>
    public override string ToString() => Device.ToString();

    /// <summary>
    /// The <c>key='value'</c> form: <c>device_id port_id devclass backend_domain mode [frontend_domain] [_option…]</c>.
    /// </summary>
    public string Serialize()
    {
        var pairs = new List<KeyValuePair<string, string>>
        {
            new("device_id", DeviceId.Value),
            new("port_id", Port.PortId),
            new("devclass", Class.ApiName()),
            new("backend_domain", Port.Backend),
            new("mode", Mode.ApiName()),
        };
        if (Frontend is not null)
            pairs.Add(new("frontend_domain", Frontend));
        pairs.AddRange(Options.ToSerializedPairs());
        return KeyValueCodec.Serialize(pairs);
    }

    /// <summary>
    /// Reads an Assign/Attach payload for the device named in the call argument. Properties may be left out
    /// (an empty payload is a manual attachment of <paramref name="expected"/>) but must not contradict it;
    /// a device id fills in a <c>*</c> one.
    /// </summary>
    /// <exception cref="ProtocolError">Malformed payload or one that names another device.</exception>
    /// <exception cref="QubesUnrecognizedDeviceAssignmentMode">Unknown mode.</exception>
    public static DeviceAssignment Parse(string untrusted, DeviceClass devclass, VirtualDevice expected)
    {
        var (properties, options) = KeyValueCodec.ParseSplit(untrusted);
        foreach (var key in properties.Keys)
        {
            if (key is not ("device_id" or "port_id" or "devclass" or "backend_domain" or "mode" or "frontend_domain"))
                throw new ProtocolError($"Unexpected assignment property '{key}'");
        }

        if (properties.TryGetValue("backend_domain", out var backend) && backend != expected.Backend)
            throw new ProtocolError($"Got device exposed by {backend} when expected devices from {expected.Backend}.");
        if (properties.TryGetValue("port_id", out var portId) && portId != expected.PortId)
            throw new ProtocolError($"Got device from port: {portId} when expected port: {expected.PortId}.");
        if (properties.TryGetValue("devclass", out var cls) && cls != devclass.ApiName())
            throw new ProtocolError($"Got {cls} device when expected {devclass.ApiName()}.");

        var deviceId = expected.DeviceId;
        if (properties.TryGetValue("device_id", out var id))
        {
            var given = id.Length == 0 ? DeviceId.Any : new DeviceId(id);
            if (!expected.DeviceId.IsAny && given != expected.DeviceId)
                throw new ProtocolError($"Unrecognized device identity '{given}' expected '{expected.DeviceId}'");
            deviceId = given;
        }

        var mode = properties.TryGetValue("mode", out var m) ? AssignmentModes.Parse(m) : AssignmentMode.Manual;
        var frontend = properties.TryGetValue("frontend_domain", out var f) && f.Length > 0 ? f : null;
        return new DeviceAssignment(devclass, expected with { DeviceId = deviceId }, frontend, mode, options);
    }

    /// <summary>
    /// Reply of <c>.Assigned</c> / <c>.Attached</c>: lines <c>BACKEND+PORT:DEVICE_ID &lt;serialization&gt;</c>, sorted.
    /// </summary>
    public static string FormatListing(IEnumerable<DeviceAssignment> assignments) =>
        string.Concat(assignments
            .Select(a => (Key: $"{a.Port.Backend}+{a.Port.PortId}:{a.DeviceId}", Text: a.Serialize()))
            .OrderBy(x => x.Key, StringComparer.Ordinal)
            .Select(x => $"{x.Key} {x.Text}\n"));
}
