using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Model;

/// <summary>Admin API property types (<c>type=</c> in property.Get).</summary>
public enum PropertyType
{
    Str,
    Int,
    Bool,
    Vm,
    Label,
    Uuid,
}

/// <summary>
/// One property: its type, who has it, whether it is writable, and where its default comes from.
/// Defaults are computed against the live collection, so a property left at default follows its source
/// (template → qube, global → qube; docs/qubes-semantics.md §1.2).
/// </summary>
public sealed record PropertyDef(
    string Name,
    PropertyType Type,
    string Help,
    Func<CollectionState, QubeState, string?>? Default = null,
    bool ReadOnly = false,
    bool WriteOnce = false,
    bool AllowNone = false,
    Func<QubeClass, bool>? AppliesTo = null,
    /// <summary>Copied from a disposable template into a new disposable (upstream <c>clone=True</c>).</summary>
    bool CopiedToDisposable = false)
{
    public string TypeName => Type switch
    {
        PropertyType.Str => "str",
        PropertyType.Int => "int",
        PropertyType.Bool => "bool",
        PropertyType.Vm => "vm",
        PropertyType.Label => "label",
        // qubesd sends every type but vm, int, bool and label as str (qubesadmin refuses anything else).
        PropertyType.Uuid => "str",
        _ => "str",
    };
}

public static class PropertyValues
{
    public static string Bool(bool value) => value ? "True" : "False";

    /// <summary>qubesd's boolean literal rules: case-insensitive 1/yes/true/on and 0/no/false/off.</summary>
    public static bool ParseBool(string untrusted) => untrusted.ToLowerInvariant() switch
    {
        "1" or "yes" or "true" or "on" => true,
        "0" or "no" or "false" or "off" => false,
        _ => throw new QubesValueError($"Invalid literal for boolean property: {untrusted}"),
    };

    public static int ParseInt(string untrusted, string qube, string property)
    {
        if (!int.TryParse(untrusted, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            throw QubesPropertyValueError.Default(qube, property, untrusted);
        return value;
    }
}

/// <summary>The per-qube property table of docs/qubes-semantics.md §1.2, plus QubesActors' restart policy.</summary>
public static class QubeProperties
{
    private static string? Inherit(CollectionState c, QubeState q, string property, string? fallback) =>
        c.TemplateOf(q) is { } template ? c.Effective(template, property) : fallback;

    private static bool NotAdmin(QubeClass cls) => cls != QubeClass.AdminVM;
    private static bool CanBeDispTemplate(QubeClass cls) => cls is QubeClass.AppVM or QubeClass.StandaloneVM;

    public static ImmutableSortedDictionary<string, PropertyDef> All { get; } = new PropertyDef[]
    {
        new("name", PropertyType.Str, "User-specified name of the domain.", WriteOnce: true),
        new("qid", PropertyType.Int, "Internal, persistent identificator of particular domain.", WriteOnce: true),
        new("uuid", PropertyType.Uuid, "UUID from libvirt.", WriteOnce: true),
        new("label", PropertyType.Label, "Colourful label assigned to VM. This is where the colour of the padlock is set."),
        new("klass", PropertyType.Str, "Domain class name", ReadOnly: true),
        new("icon", PropertyType.Str, "freedesktop icon name, suitable for use in :py:meth:`PyQt4.QtGui.QIcon.fromTheme`", ReadOnly: true),
        new("template", PropertyType.Vm, "Template, on which this domain is based.", AppliesTo: c => c.HasTemplate()),
        new("netvm", PropertyType.Vm, "VM that provides network connection to this domain. When `None`, machine is disconnected.",
            Default: (c, q) => q.Class == QubeClass.TemplateVM ? null : c.GlobalEffective("default_netvm"), AllowNone: true, AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("provides_network", PropertyType.Bool, "If this domain can act as network provider (formerly known as NetVM or ProxyVM)",
            Default: (_, _) => "False", AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("template_for_dispvms", PropertyType.Bool, "Should this VM be allowed to start as Disposable VM",
            Default: (_, _) => "False", AppliesTo: CanBeDispTemplate),
        new("default_dispvm", PropertyType.Vm, "Default VM to be used as Disposable VM for service calls.",
            Default: (c, q) => q.Class == QubeClass.DispVM ? c.Effective(q, "template") : c.GlobalEffective("default_dispvm"), AllowNone: true, CopiedToDisposable: true),
        new("management_dispvm", PropertyType.Vm, "Default DVM template for Disposable VM for managing this VM.",
            Default: (c, q) => Inherit(c, q, "management_dispvm", c.GlobalEffective("management_dispvm")), AllowNone: true, CopiedToDisposable: true),
        new("guivm", PropertyType.Vm, "VM used for GUI", Default: (c, _) => c.GlobalEffective("default_guivm"), AllowNone: true, CopiedToDisposable: true),
        new("audiovm", PropertyType.Vm, "VM used for Audio", Default: (c, _) => c.GlobalEffective("default_audiovm"), AllowNone: true, CopiedToDisposable: true),
        new("memory", PropertyType.Int, "Memory currently available for this VM. TemplateBasedVMs use its template's value by default.",
            Default: (c, q) => Inherit(c, q, "memory", "400"), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("maxmem", PropertyType.Int, "Maximum amount of memory available for this VM (for the purpose of the memory balancer). Set to 0 to disable memory balancing for this qube.",
            Default: MaxMemDefault, AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("vcpus", PropertyType.Int, "Number of virtual CPUs for a qube", Default: (c, q) => Inherit(c, q, "vcpus", "2"), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("virt_mode", PropertyType.Str, "Virtualisation mode: full virtualisation (\"HVM\"), with qemu in dom0 (\"HVM\"), or paravirtualisation (\"PV\"), or hybrid (\"PVH\").",
            Default: (c, q) => q.Assignments.Values.Any(a => a.DeviceClass == "pci") ? "hvm" : Inherit(c, q, "virt_mode", "pvh"), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("kernel", PropertyType.Str, "Kernel used by this domain.", Default: (c, q) => Inherit(c, q, "kernel", c.GlobalEffective("default_kernel") ?? ""), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("kernelopts", PropertyType.Str, "Kernel command line passed to domain.",
            Default: (c, q) => q.Assignments.Values.Any(a => a.DeviceClass == "pci") ? "" : Inherit(c, q, "kernelopts", "swiotlb=2048"), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("default_user", PropertyType.Str, "Default user to start applications as. TemplateBasedVMs use its template's value by default.",
            Default: (c, q) => Inherit(c, q, "default_user", "user"), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("qrexec_timeout", PropertyType.Int, "Time in seconds after which qrexec connection attempt is deemed failed.",
            Default: (c, q) => Inherit(c, q, "qrexec_timeout", c.GlobalEffective("default_qrexec_timeout")), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("shutdown_timeout", PropertyType.Int, "Time in seconds for shutdown of the VM, after which VM may be forcefully powered off.",
            Default: (c, q) => Inherit(c, q, "shutdown_timeout", c.GlobalEffective("default_shutdown_timeout")), AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("autostart", PropertyType.Bool, "Setting this to `True` means that VM should be autostarted on dom0 boot.", Default: (_, _) => "False", AppliesTo: NotAdmin),
        new("include_in_backups", PropertyType.Bool, "If this domain is to be included in default backup.",
            Default: (c, q) => PropertyValues.Bool(q.Class != QubeClass.DispVM || !PropertyValues.ParseBool(c.Effective(q, "auto_cleanup") ?? "False")), AppliesTo: NotAdmin),
        new("debug", PropertyType.Bool, "Turns on debugging features.", Default: (_, _) => "False", AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("updateable", PropertyType.Bool, "True if this machine may be updated on its own.", Default: (_, q) => PropertyValues.Bool(!q.Class.HasTemplate()), ReadOnly: true),
        new("installed_by_rpm", PropertyType.Bool, "If this domain's image was installed from package tracked by package manager.", Default: (_, _) => "False", AppliesTo: NotAdmin),
        new("mac", PropertyType.Str, "MAC address of the NIC emulated inside VM", Default: (_, _) => "00:16:3e:5e:6c:00", AppliesTo: NotAdmin, CopiedToDisposable: true),
        new("ip", PropertyType.Str, "IP address of this domain.", Default: (c, q) => Addressing.IsNetworked(c, q) ? Addressing.Ip(q) : null, ReadOnly: true, AppliesTo: NotAdmin),
        new("visible_ip", PropertyType.Str, "IP address of this domain as seen by the domain.", Default: (c, q) => Addressing.IsNetworked(c, q) ? Addressing.Ip(q) : null, ReadOnly: true, AppliesTo: NotAdmin),
        new("gateway", PropertyType.Str, "Gateway for other domains that use this domain as netvm.",
            Default: (c, q) => PropertyValues.ParseBool(c.Effective(q, "provides_network") ?? "False") ? Addressing.Ip(q) : null, ReadOnly: true, AppliesTo: NotAdmin),
        new("dns", PropertyType.Str, "DNS servers set up for this domain.", Default: (c, q) => Addressing.IsNetworked(c, q) ? "10.139.1.1 10.139.1.2" : null, ReadOnly: true, AppliesTo: NotAdmin),
        new("xid", PropertyType.Int, "Xen ID or -1 if domain is not running.", Default: (_, q) => q.Class == QubeClass.AdminVM ? "0" : q.Power.IsActive() ? (q.Qid + 1).ToString(CultureInfo.InvariantCulture) : "-1", ReadOnly: true),
        new("start_time", PropertyType.Str, "Tells when machine was started.", Default: (_, q) => q.StartTime?.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) ?? "", ReadOnly: true, AppliesTo: NotAdmin),
        new("dispid", PropertyType.Int, "Internal, persistent identifier of particular DispVM.", WriteOnce: true, AppliesTo: c => c == QubeClass.DispVM),
        new("auto_cleanup", PropertyType.Bool, "automatically remove this VM upon shutdown", Default: (_, _) => "False", AppliesTo: c => c == QubeClass.DispVM),
        new("devices_denied", PropertyType.Str, "Interface codes (patterns, * for any character) of devices that cannot be attached to this qube manually.",
            Default: (_, _) => ""),
        // QubesActors' supervision settings (DESIGN.md, restart policy); not upstream properties.
        new("restart", PropertyType.Str, "Restart policy: permanent (always), transient (after a crash), temporary (never).",
            Default: (c, q) => c.IsServiceQube(q) ? "permanent" : "temporary", AppliesTo: NotAdmin),
        new("restart_intensity", PropertyType.Int, "At most this many restarts within restart_period seconds; past it the qube is marked failed.",
            Default: (_, _) => "5", AppliesTo: NotAdmin),
        new("restart_period", PropertyType.Int, "Window in seconds for restart_intensity.", Default: (_, _) => "60", AppliesTo: NotAdmin),
    }.ToImmutableSortedDictionary(p => p.Name, p => p, StringComparer.Ordinal);

    /// <summary>The properties a qube of this class has, in name order.</summary>
    public static IReadOnlyList<PropertyDef> For(QubeClass cls) => ByClass[cls];

    // Computed once: GetAll and List walk this on every call.
    private static readonly FrozenDictionary<QubeClass, PropertyDef[]> ByClass =
        Enum.GetValues<QubeClass>().ToFrozenDictionary(c => c, c => All.Values.Where(p => p.AppliesTo?.Invoke(c) ?? true).ToArray());

    public static PropertyDef Get(QubeState qube, string untrustedName) =>
        All.TryGetValue(untrustedName, out var def) && (def.AppliesTo?.Invoke(qube.Class) ?? true)
            ? def
            : throw QubesNoSuchPropertyError.Default(qube.Name, untrustedName);

    private static string? MaxMemDefault(CollectionState c, QubeState q)
    {
        if (!MemoryBalancingPossible(c, q))
            return "0";
        if (c.TemplateOf(q) is { } template)
            return c.Effective(template, "maxmem");
        // Linux cannot balloon beyond about ten times its initial memory; never default above half of the host.
        long value = q.Features.GetValueOrDefault("os") == "Linux" ? 10L * c.EffectiveInt(q, "memory") : 4000;
        if (int.TryParse(c.GlobalEffective("maxmem"), NumberStyles.None, CultureInfo.InvariantCulture, out var host))
            value = Math.Min(value, host / 2);
        return value.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>No balancing with PCI devices, nor for an HVM qube without the Qubes tools (feature qrexec, through the template).</summary>
    private static bool MemoryBalancingPossible(CollectionState c, QubeState q)
    {
        if (q.Assignments.Values.Any(a => a.DeviceClass == "pci"))
            return false;
        if (c.Effective(q, "virt_mode") != "hvm")
            return true;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var current = q; current is not null && seen.Add(current.Name); current = c.TemplateOf(current))
            if (current.Features.TryGetValue("qrexec", out var qrexec))
                return qrexec.Length > 0;
        return false;
    }
}

/// <summary>Qubes' addressing (docs/qubes-semantics.md §1.1).</summary>
public static class Addressing
{
    public static string Ip(QubeState q) => q.DispId is { } dispId ? VmIdToIpv4("10.138", dispId) : VmIdToIpv4("10.137", q.Qid);

    /// <summary>
    /// Upstream's mapping: ids below 255 keep <c>.0.&lt;id&gt;</c>; larger ones skip the .0 and .255 host parts
    /// (some systems assume a /24), i.e. <c>(id-1)/254 . (id-1)%254+1</c>.
    /// </summary>
    public static string VmIdToIpv4(string prefix, int id) => id < 255
        ? $"{prefix}.{id >> 8 & 0xff}.{id & 0xff}"
        : $"{prefix}.{(id - 1) / 254}.{(id - 1) % 254 + 1}";

    /// <summary>A qube that can reach the network: it provides network itself, or it has a netvm.</summary>
    public static bool IsNetworked(CollectionState c, QubeState q) =>
        PropertyValues.ParseBool(c.Effective(q, "provides_network") ?? "False") || c.Effective(q, "netvm") is not null;
}
