using QubesActors.Core.Model;

namespace QubesActors.Sandbox.Storage;

/// <summary>
/// Where a sandbox's file systems come from, as Qubes keeps them (docs/sandbox.md): a TemplateVM and a StandaloneVM
/// own a persistent root; an AppVM's root is an overlay of its template's root (read-only lower layer) whose changes
/// (upper) are discarded at shutdown; a disposable's upper, work and private live on a tmpfs and nothing survives it.
/// Every qube but a disposable has a persistent private volume, mounted at <c>/rw</c>. Pure: paths only.
/// </summary>
public sealed record SandboxVolumes(
    string Name,
    QubeClass Class,
    string? Lower,
    string? Upper,
    string? Work,
    string Root,
    string Private,
    string Run,
    bool Volatile)
{
    /// <summary>The paths of <paramref name="name"/> under the storage root <paramref name="storage"/>.</summary>
    public static SandboxVolumes For(string storage, string name, QubeClass klass, string? template)
    {
        var qube = Path.Combine(storage, "qubes", name);
        var run = Path.Combine(qube, "run");
        switch (klass)
        {
            case QubeClass.TemplateVM:
                return new(name, klass, null, null, null, TemplateRoot(storage, name), Path.Combine(qube, "private"), run, false);
            case QubeClass.StandaloneVM:
                return new(name, klass, null, null, null, Path.Combine(qube, "root"), Path.Combine(qube, "private"), run, false);
            case QubeClass.DispVM:
            {
                // One tmpfs holds everything the disposable writes.
                var tmp = Path.Combine(qube, "volatile");
                return new(name, klass, TemplateRoot(storage, template ?? throw new ArgumentException("a disposable needs a template")),
                    Path.Combine(tmp, "upper"), Path.Combine(tmp, "work"), Path.Combine(qube, "merged"), Path.Combine(tmp, "private"), run, true);
            }
            default:
            {
                var volatileDir = Path.Combine(qube, "volatile");
                return new(name, klass, TemplateRoot(storage, template ?? throw new ArgumentException($"{klass} {name} needs a template")),
                    Path.Combine(volatileDir, "upper"), Path.Combine(volatileDir, "work"), Path.Combine(qube, "merged"), Path.Combine(qube, "private"), run, false);
            }
        }
    }

    public static string TemplateRoot(string storage, string template) => Path.Combine(storage, "templates", template, "root");

    /// <summary>The directory holding everything of this qube (and, for a disposable, the tmpfs mount point).</summary>
    public string QubeDir => Path.GetDirectoryName(Run)!;

    public bool IsOverlay => Lower is not null;

    /// <summary>The overlay's mount options (lowerdir, upperdir, workdir).</summary>
    public string OverlayOptions => $"lowerdir={Lower},upperdir={Upper},workdir={Work}";
}
