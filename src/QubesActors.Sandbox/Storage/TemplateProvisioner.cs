using System.Collections.Concurrent;

namespace QubesActors.Sandbox.Storage;

/// <summary>
/// Builds a template's root the first time a qube needs it (the default template is a debootstrap tree, issue 6):
/// into a sibling directory first, renamed into place when complete, so a crash half way leaves no half root and the
/// next start builds again. Concurrent starts on one template wait for the same build.
/// </summary>
public sealed class TemplateProvisioner(Func<string, CancellationToken, Task> build)
{
    private readonly ConcurrentDictionary<string, Lazy<Task>> _building = new(StringComparer.Ordinal);

    /// <summary>A root counts as there when its init is: the last thing a build puts in.</summary>
    public static bool IsComplete(string root) => File.Exists(Path.Combine(root, "sbin", "qubes-init"));

    public Task EnsureAsync(string root, CancellationToken ct)
    {
        if (IsComplete(root))
            return Task.CompletedTask;
        var building = _building.GetOrAdd(root, r => new Lazy<Task>(() => BuildAsync(r)));
        return building.Value.WaitAsync(ct);
    }

    private async Task BuildAsync(string root)
    {
        try
        {
            if (IsComplete(root))
                return;
            var partial = root + ".partial";
            if (Directory.Exists(partial))
                Directory.Delete(partial, recursive: true);
            Directory.CreateDirectory(Path.GetDirectoryName(root)!);
            await build(partial, CancellationToken.None).ConfigureAwait(false);
            if (!IsComplete(partial))
                throw new SandboxException($"building template root {root}: the build left no /sbin/qubes-init");
            // An empty directory (a template created but never built) is replaced; anything else is refused.
            if (Directory.Exists(root))
            {
                if (Directory.EnumerateFileSystemEntries(root).Any())
                    throw new SandboxException($"template root {root} exists without /sbin/qubes-init; remove it or install the init");
                Directory.Delete(root);
            }
            Directory.Move(partial, root);
        }
        finally
        {
            _building.TryRemove(root, out _);
        }
    }

    /// <summary>The tiny busybox root (tests, benchmarks, machines without a Debian mirror).</summary>
    public static TemplateProvisioner Busybox(string busybox = "/bin/busybox") =>
        new((root, _) =>
        {
            BusyboxTemplate.Build(root, busybox);
            return Task.CompletedTask;
        });
}
