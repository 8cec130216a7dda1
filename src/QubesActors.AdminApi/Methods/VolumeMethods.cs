using System.Globalization;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// admin.vm.volume.{List,Info}, read-only: storage pools are not managed here (the simulated backend stores nothing),
/// but qvm-ls's disk format and the clients' volume views need each qube's volume layout. It is Qubes' standard one:
/// root, private, volatile, kernel, with the sizes of a default installation and no usage.
/// </summary>
public static class VolumeMethods
{
    public const long RootSize = 20L << 30;
    public const long PrivateSize = 2L << 30;
    public const long VolatileSize = 10L << 30;

    public static readonly IReadOnlyList<string> Names = ["root", "private", "volatile", "kernel"];

    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.vm.volume.List", DestinationKind.Any, (call, _) => Ok(call.DestIsAdmin ? "" : Lines(Names))),
        Read("admin.vm.volume.Info", DestinationKind.Any, (call, _) => Ok(Info(call.State, call.Dest, call.Arg)), arg: Presence.Required),
    ];

    /// <summary><c>key=value</c> lines in upstream's order; an unknown volume is refused as qubesd does.</summary>
    public static string Info(CollectionState state, QubeState qube, string untrustedVolume)
    {
        if (qube.Class == QubeClass.AdminVM || !Names.Contains(untrustedVolume))
            throw new PermissionDenied($"Argument not in '{qube.Name} volumes'");
        var volume = untrustedVolume;
        var template = state.TemplateOf(qube);
        // Template-based qubes start from a snapshot of their template's root (and a disposable of its private too).
        var fromTemplate = volume == "root" ? template is not null : volume == "private" && qube.Class == QubeClass.DispVM;
        var persistent = volume == "private" || (volume == "root" && template is null);
        var kernel = volume == "kernel";
        string?[] values =
        [
            kernel ? "linux-kernel" : "varlibqubes",
            kernel ? state.Effective(qube, "kernel") ?? "" : Vid(qube, volume),
            (volume switch { "root" => RootSize, "private" => PrivateSize, "volatile" => VolatileSize, _ => 0 }).ToString(CultureInfo.InvariantCulture),
            "0",
            PropertyValues.Bool(!kernel),
            fromTemplate && template is not null ? Vid(template, volume) : "",
            "",
            PropertyValues.Bool(persistent),
            PropertyValues.Bool(fromTemplate),
            persistent ? "1" : "0",
            PropertyValues.Bool(qube.Class == QubeClass.DispVM && volume != "kernel"),
            "False",
        ];
        string[] keys = ["pool", "vid", "size", "usage", "rw", "source", "path", "save_on_stop", "snap_on_start", "revisions_to_keep", "ephemeral", "is_outdated"];
        return string.Concat(keys.Zip(values, (k, v) => $"{k}={v}\n"));
    }

    private static string Vid(QubeState qube, string volume) =>
        $"{(qube.Class == QubeClass.TemplateVM ? "vm-templates" : qube.Class == QubeClass.DispVM ? "disp" : "appvms")}/{qube.Name}/{volume}";
}
