using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Model;

/// <summary>Global properties (<c>qubes-prefs</c>, docs/qubes-semantics.md §1.3).</summary>
public static class GlobalProperties
{
    public static ImmutableSortedDictionary<string, PropertyDef> All { get; } = new PropertyDef[]
    {
        new("default_netvm", PropertyType.Vm, "Default NetVM for AppVMs. Initial state is `None`, which means that AppVMs are not connected to the Internet.", AllowNone: true),
        new("default_template", PropertyType.Vm, "Default template for new AppVMs", AllowNone: true),
        new("default_dispvm", PropertyType.Vm, "Default DispVM base for service calls", AllowNone: true),
        new("management_dispvm", PropertyType.Vm, "Default DispVM base for managing VMs", AllowNone: true),
        new("updatevm", PropertyType.Vm, "Which VM to use as `yum` proxy for updating AdminVM and TemplateVMs", AllowNone: true),
        new("clockvm", PropertyType.Vm, "Which VM to use as NTP proxy for updating AdminVM", AllowNone: true),
        new("default_kernel", PropertyType.Str, "Which kernel to use when not overriden in VM", Default: (_, _) => ""),
        new("default_guivm", PropertyType.Vm, "Default GUI VM for new qubes.", Default: (_, _) => "dom0", AllowNone: true),
        new("default_audiovm", PropertyType.Vm, "Default Audio VM for new qubes.", Default: (_, _) => "dom0", AllowNone: true),
        new("default_qrexec_timeout", PropertyType.Int, "Default time in seconds after which qrexec connection attempt is deemed failed", Default: (_, _) => "60"),
        new("default_shutdown_timeout", PropertyType.Int, "Default time in seconds for VM shutdown to complete", Default: (_, _) => "60"),
        new("stats_interval", PropertyType.Int, "Interval in seconds for VM stats reporting (memory, CPU usage)", Default: (_, _) => "3"),
        new("check_updates_vm", PropertyType.Bool, "Check for updates inside qubes", Default: (_, _) => "True"),
        new("maxmem", PropertyType.Int, "Maximum memory of the host (MiB)", Default: (_, _) => "24576", ReadOnly: true),
        new("no_cpus", PropertyType.Int, "Number of CPUs of the host", Default: (_, _) => Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture), ReadOnly: true),
    }.ToImmutableSortedDictionary(p => p.Name, p => p, StringComparer.Ordinal);

    /// <summary>Global VM-valued properties; a qube they point to cannot be removed (§3.3).</summary>
    public static readonly ImmutableArray<string> VmValued =
        ["default_netvm", "default_template", "default_dispvm", "management_dispvm", "updatevm", "clockvm", "default_guivm", "default_audiovm"];

    public static PropertyDef Get(string untrustedName) =>
        All.TryGetValue(untrustedName, out var def) ? def : throw QubesNoSuchPropertyError.Default("dom0", untrustedName);
}
