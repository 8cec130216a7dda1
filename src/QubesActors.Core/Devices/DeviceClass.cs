using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>Device classes (upstream entry points <c>qubes.devices</c>): pci and block from core, usb, mic.</summary>
public enum DeviceClass
{
    Pci,
    Block,
    Usb,
    Mic,
}

public static class DeviceClasses
{
    /// <summary>Core classes first, as upstream lists its entry points.</summary>
    public static ImmutableArray<DeviceClass> All { get; } = [DeviceClass.Pci, DeviceClass.Block, DeviceClass.Usb, DeviceClass.Mic];

    /// <summary>The lower-case name used in method names (<c>admin.vm.device.pci.Attach</c>) and serializations.</summary>
    public static string ApiName(this DeviceClass devclass) => devclass switch
    {
        DeviceClass.Pci => "pci",
        DeviceClass.Block => "block",
        DeviceClass.Usb => "usb",
        DeviceClass.Mic => "mic",
        _ => throw new ArgumentOutOfRangeException(nameof(devclass), devclass, null),
    };

    /// <summary>Upstream writes <c>devclass.capitalize()</c> in messages, hence <c>Pci</c>, not <c>PCI</c>.</summary>
    public static string CapitalizedName(this DeviceClass devclass)
    {
        var name = devclass.ApiName();
        return char.ToUpperInvariant(name[0]) + name[1..];
    }

    public static bool TryParse(string? untrustedName, out DeviceClass devclass)
    {
        foreach (var candidate in All)
        {
            // Exact spelling only: method names are case-sensitive upstream.
            if (string.Equals(candidate.ApiName(), untrustedName, StringComparison.Ordinal))
            {
                devclass = candidate;
                return true;
            }
        }
        devclass = default;
        return false;
    }

    /// <exception cref="ProtocolError">Unknown class name.</exception>
    public static DeviceClass Parse(string untrustedName) =>
        TryParse(untrustedName, out var devclass)
            ? devclass
            : throw new ProtocolError($"Unknown device class: '{untrustedName}'");

    /// <summary>Reply of <c>admin.deviceclass.List</c>: one name per line, each line terminated.</summary>
    public static string FormatDeviceClassList() => string.Concat(All.Select(c => c.ApiName() + "\n"));
}
