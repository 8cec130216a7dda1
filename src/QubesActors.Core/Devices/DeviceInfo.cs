using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// What a backend exposes about one device (upstream <c>DeviceInfo</c>), as listed by
/// <c>admin.vm.device.&lt;class&gt;.Available</c>. Unset text fields are <c>null</c> (upstream: <c>'unknown'</c>).
/// </summary>
public sealed record DeviceInfo
{
    public DeviceInfo(DeviceClass devclass, DevicePort port, DeviceId? deviceId = null)
    {
        if (port.IsAnyBackend || port.IsAnyPort)
            throw new ProtocolError($"An exposed device needs a concrete port, not '{port}'");
        if (deviceId is { IsAny: true })
            throw new ProtocolError("An exposed device needs a concrete device id, not '*'");
        Class = devclass;
        Port = port;
        DeviceId = deviceId ?? DeviceId.Unknown;
    }

    public DeviceClass Class { get; }
    public DevicePort Port { get; }
    public DeviceId DeviceId { get; }

    public string? Vendor { get; init => field = CheckText(value, "vendor"); }
    public string? Product { get; init => field = CheckText(value, "product"); }
    public string? Manufacturer { get; init => field = CheckText(value, "manufacturer"); }
    public string? Name { get; init => field = CheckText(value, "name"); }
    public string? Serial { get; init => field = CheckText(value, "serial"); }

    /// <summary>Concatenated 7-character interface codes; a device always has one, unknown if none is given.</summary>
    public string Interfaces
    {
        get;
        init
        {
            var normalized = string.IsNullOrEmpty(value) ? DeviceInterfaces.UnknownCode : value;
            DeviceInterfaces.Split(normalized);
            field = normalized;
        }
    } = DeviceInterfaces.UnknownCode;

    /// <summary>The frontend qube the device is attached to, if any.</summary>
    public string? Attachment
    {
        get;
        init
        {
            if (value is not null && !DevicePort.QubeName().IsMatch(value))
                throw new ProtocolError($"Invalid qube name: '{value}'");
            field = value;
        }
    }

    /// <summary>Backend-specific extras, serialized with a leading <c>_</c>.</summary>
    public DeviceOptions Options { get; init; } = DeviceOptions.Empty;

    public VirtualDevice Address => new(Port, DeviceId);

    public ImmutableArray<string> InterfaceCodes => DeviceInterfaces.Split(Interfaces);

    /// <summary>
    /// Short human-readable text as upstream builds it: <c>&lt;category&gt;: &lt;vendor&gt; &lt;product&gt;</c>,
    /// the category here being just the class (no hwdata tables in the model).
    /// </summary>
    public string Description
    {
        get
        {
            var product = Product ?? Name ?? Serial ?? $"unknown {Class.ApiName()} device";
            var vendor = Vendor ?? Manufacturer ?? "unknown vendor";
            return $"{Class.ApiName().ToUpperInvariant()} device: {vendor} {product}";
        }
    }

    /// <summary>The <c>key='value'</c> form, in upstream's key order.</summary>
    public string Serialize()
    {
        var pairs = new List<KeyValuePair<string, string>>
        {
            new("device_id", DeviceId.Value),
            new("port_id", Port.PortId),
            new("devclass", Class.ApiName()),
            new("backend_domain", Port.Backend),
        };
        AddIfSet("vendor", Vendor);
        AddIfSet("product", Product);
        AddIfSet("manufacturer", Manufacturer);
        AddIfSet("name", Name);
        AddIfSet("serial", Serial);
        AddIfSet("attachment", Attachment);
        pairs.Add(new("interfaces", Interfaces));
        pairs.AddRange(Options.ToSerializedPairs());
        return KeyValueCodec.Serialize(pairs);

        void AddIfSet(string key, string? value)
        {
            if (value is not null)
                pairs.Add(new(key, value));
        }
    }

    /// <summary>Reads <see cref="Serialize"/>'s form. Text fields <c>'unknown'</c> or empty read as unset.</summary>
    /// <exception cref="ProtocolError">Malformed text, missing port/class/backend, bad names or codes.</exception>
    public static DeviceInfo Parse(string untrusted)
    {
        var (properties, options) = KeyValueCodec.ParseSplit(untrusted);
        var known = new HashSet<string>(StringComparer.Ordinal)
        {
            "device_id", "port_id", "devclass", "backend_domain", "vendor", "product", "manufacturer", "name",
            "serial", "attachment", "interfaces",
        };
        // Upstream keeps unrecognised keys as extra data, written back with '_'; so do we.
        foreach (var (key, value) in properties.Where(p => !known.Contains(p.Key)))
            options = options.With(key, value);

        var port = new DevicePort(Required("backend_domain"), Required("port_id"));
        var devclass = DeviceClasses.Parse(Required("devclass"));
        var deviceId = properties.TryGetValue("device_id", out var id) && id.Length > 0 ? new DeviceId(id) : null;
        try
        {
            return new DeviceInfo(devclass, port, deviceId)
            {
                Vendor = Text("vendor"),
                Product = Text("product"),
                Manufacturer = Text("manufacturer"),
                Name = Text("name"),
                Serial = Text("serial"),
                Attachment = Text("attachment"),
                Interfaces = properties.GetValueOrDefault("interfaces", ""),
                Options = options,
            };
        }
        catch (QubesValueError e)
        {
            // Untrusted input: every parse failure is a protocol error.
            throw new ProtocolError(e.Message);
        }

        string Required(string key) =>
            properties.TryGetValue(key, out var value) ? value : throw new ProtocolError($"Missing device property '{key}'");

        string? Text(string key) =>
            properties.TryGetValue(key, out var value) && value.Length > 0 && value != KeyValueCodec.Unknown ? value : null;
    }

    /// <summary>
    /// Reply of <c>admin.vm.device.&lt;class&gt;.Available</c>: lines <c>PORT:DEVICE_ID &lt;serialization&gt;</c>,
    /// sorted by that first field.
    /// </summary>
    public static string FormatAvailableListing(IEnumerable<DeviceInfo> devices) =>
        string.Concat(devices
            .Select(d => (Key: $"{d.Port.PortId}:{d.DeviceId}", Text: d.Serialize()))
            .OrderBy(x => x.Key, StringComparer.Ordinal)
            .Select(x => $"{x.Key} {x.Text}\n"));

    private static string? CheckText(string? value, string what)
    {
        // 'unknown' and empty are how the wire says "unset"; keep one spelling so round-trips are exact.
        if (value is null || value.Length == 0 || value == KeyValueCodec.Unknown)
            return null;
        if (!KeyValueCodec.IsValidValue(value))
            throw new ProtocolError($"Invalid chars in device {what}");
        return value;
    }
}
