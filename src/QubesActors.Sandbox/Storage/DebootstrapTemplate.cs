using System.Diagnostics;

namespace QubesActors.Sandbox.Storage;

/// <summary>
/// The default template: a Debian tree made by <c>debootstrap --variant=minbase</c> on first use, plus what a qube
/// needs (the init, its mount points, Qubes' DNS addresses, a hostname). Built in a temporary sibling directory and
/// renamed into place only once complete (a marker file, written last): a crash half way leaves no half template,
/// and the next call removes the leftover and starts again.
/// </summary>
public static class DebootstrapTemplate
{
    /// <summary>Present (and written last) in a complete template root.</summary>
    public const string Marker = ".qubes-template-complete";

    public const string DefaultMirror = "http://deb.debian.org/debian";


    private const string BuildingSuffix = ".building-";

    public static bool IsComplete(string templateRoot) => File.Exists(Path.Combine(templateRoot, Marker));

    /// <summary>
    /// Makes sure <paramref name="templateRoot"/> holds a complete template; builds it if not (minutes: a download of
    /// about 40 MB and an install). <paramref name="mirror"/> defaults to the one apt on this machine uses for
    /// <paramref name="suite"/> (<see cref="MirrorFromAptSources"/>), else Debian's. Returns true when it built.
    /// </summary>
    public static async Task<bool> EnsureAsync(string templateRoot, string suite = "bookworm", string? mirror = null,
        string debootstrap = "/usr/sbin/debootstrap", string aptDirectory = "/etc/apt", string? hostname = null, CancellationToken ct = default)
    {
        templateRoot = Path.GetFullPath(templateRoot).TrimEnd('/');
        if (IsComplete(templateRoot))
            return false;
        var parent = Path.GetDirectoryName(templateRoot)!;
        Directory.CreateDirectory(parent);
        RemoveLeftovers(templateRoot);
        mirror ??= MirrorFromAptSources(ReadAptSources(aptDirectory), suite) ?? DefaultMirror;

        var building = templateRoot + BuildingSuffix + Guid.NewGuid().ToString("N")[..8];
        try
        {
            await RunAsync(debootstrap, ["--variant=minbase", suite, building, mirror], ct).ConfigureAwait(false);
            AddQubeParts(building, hostname ?? DefaultHostname(templateRoot));
            File.WriteAllText(Path.Combine(building, Marker), $"debootstrap --variant=minbase {suite} {mirror}\n");
            try
            {
                Directory.Move(building, templateRoot);
            }
            catch (IOException) when (IsComplete(templateRoot))
            {
                // Someone else finished first: theirs stays.
                Delete(building);
                return false;
            }
            return true;
        }
        catch
        {
            Delete(building);
            throw;
        }
    }

    /// <summary>
    /// Removes a tree debootstrap may have left mounts in (its /proc and /sys, when it was killed before its own
    /// cleanup): they are detached first, so a recursive delete never walks into the host's /proc or /sys.
    /// </summary>
    private static void Delete(string dir)
    {
        var prefix = dir.TrimEnd('/') + "/";
        var mounts = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).Where(f => f.Length > 4)
            .Select(f => f[4].Replace("\\040", " ").Replace("\\134", "\\")).Where(m => m.StartsWith(prefix, StringComparison.Ordinal) || m == dir)
            .OrderByDescending(m => m.Length).ToList();
        foreach (var mount in mounts)
            if (Native.Umount2(mount, Native.MntDetach) != 0)
                throw new SandboxException($"cannot unmount {mount} inside the unfinished template {dir}");
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }

    /// <summary>
    /// What a crash left: a building directory of an earlier attempt, or a root without the marker (which only a
    /// foreign or damaged tree can be, since a root is renamed into place complete).
    /// </summary>
    private static void RemoveLeftovers(string templateRoot)
    {
        var parent = Path.GetDirectoryName(templateRoot)!;
        foreach (var dir in Directory.EnumerateDirectories(parent, Path.GetFileName(templateRoot) + BuildingSuffix + "*"))
            Delete(dir);
        if (Directory.Exists(templateRoot) && !IsComplete(templateRoot))
            Delete(templateRoot);
    }

    /// <summary>The template's name: the directory above its root (<c>templates/NAME/root</c>).</summary>
    private static string DefaultHostname(string templateRoot) =>
        Path.GetFileName(templateRoot) == "root" ? Path.GetFileName(Path.GetDirectoryName(templateRoot)!) : "template";

    /// <summary>The init, the mount points the sandbox binds over, DNS and hostname; the downloaded packages go (apt-get clean).</summary>
    public static void AddQubeParts(string root, string hostname)
    {
        QubesInit.Install(root);
        foreach (var dir in new[] { "rw", "run/qubes", "proc", "dev", "tmp" })
            Directory.CreateDirectory(Path.Combine(root, dir));
        // debootstrap copies the host's: replaced, never written through (it may be a symlink).
        foreach (var (file, text) in new[] { ("etc/resolv.conf", Network.VirtualDns.ResolvConf), ("etc/hostname", hostname + "\n") })
        {
            var path = Path.Combine(root, file);
            File.Delete(path);
            File.WriteAllText(path, text);
            File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("644", 8));
        }
        var archives = Path.Combine(root, "var/cache/apt/archives");
        if (Directory.Exists(archives))
            foreach (var deb in Directory.EnumerateFiles(archives, "*.deb"))
                File.Delete(deb);
    }

    /// <summary>The apt source files of this machine (<c>sources.list</c>, <c>sources.list.d/*.list|*.sources</c>) as (name, text).</summary>
    public static IReadOnlyList<(string Name, string Text)> ReadAptSources(string aptDirectory)
    {
        var files = new List<string>();
        if (File.Exists(Path.Combine(aptDirectory, "sources.list")))
            files.Add(Path.Combine(aptDirectory, "sources.list"));
        var d = Path.Combine(aptDirectory, "sources.list.d");
        if (Directory.Exists(d))
            files.AddRange(Directory.EnumerateFiles(d).Where(f => f.EndsWith(".list", StringComparison.Ordinal) || f.EndsWith(".sources", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        return [.. files.Select(f => (Path.GetFileName(f), File.ReadAllText(f)))];
    }

    /// <summary>
    /// The first <c>deb</c> source for <paramref name="suite"/> itself (not <c>-updates</c>, not security) in one-line
    /// (<c>.list</c>) or deb822 (<c>.sources</c>) form; null when there is none. Pure.
    /// </summary>
    public static string? MirrorFromAptSources(IEnumerable<(string Name, string Text)> sources, string suite)
    {
        foreach (var (name, text) in sources)
        {
            if (name.EndsWith(".sources", StringComparison.Ordinal))
            {
                foreach (var stanza in text.Replace("\r\n", "\n").Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
                {
                    var fields = stanza.Split('\n').Where(l => !l.TrimStart().StartsWith('#') && l.Contains(':'))
                        .Select(l => (Key: l[..l.IndexOf(':')].Trim().ToLowerInvariant(), Value: l[(l.IndexOf(':') + 1)..].Trim()))
                        .GroupBy(f => f.Key).ToDictionary(g => g.Key, g => g.First().Value);
                    string Field(string key) => fields.TryGetValue(key, out var v) ? v : "";
                    if (Field("enabled").ToLowerInvariant() == "no" || !Field("types").Split(' ').Contains("deb") || !Field("suites").Split(' ').Contains(suite))
                        continue;
                    if (Field("uris").Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() is { } uri)
                        return uri;
                }
            }
            else
            {
                foreach (var raw in text.Split('\n'))
                {
                    var line = raw.Split('#')[0].Trim();
                    // deb [options] URI SUITE COMPONENTS...
                    var words = System.Text.RegularExpressions.Regex.Replace(line, @"\[[^\]]*\]", " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (words is ["deb", var uri, var s, ..] && s == suite)
                        return uri;
                }
            }
        }
        return null;
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> args, CancellationToken ct)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new SandboxException($"{file} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        if (process.ExitCode != 0)
        {
            // debootstrap says what failed on stderr, the step it was at on stdout: the last lines of both.
            var tail = string.Join('\n', ((await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false))).Trim().Split('\n').TakeLast(5));
            throw new SandboxException($"{file} {string.Join(' ', args)}: exit {process.ExitCode}: {tail}");
        }
    }
}
