namespace QubesActors.Cli.Shell;

/// <summary>
/// The shell's history file: one entered line per line, the newest last, at most <see cref="Limit"/> lines,
/// readable by its owner only (commands can name qubes and values the user may not want others to see).
/// </summary>
public sealed class ShellHistory
{
    public const int Limit = 1000;
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly List<string> _lines;

    private ShellHistory(string? path, List<string> lines)
    {
        Path = path;
        _lines = lines;
    }

    /// <summary>The file, or null for a history kept in memory only (the file could not be read).</summary>
    public string? Path { get; }
    public IReadOnlyList<string> Lines => _lines;

    /// <summary>$XDG_STATE_HOME/qubesactors/qvm_history, else ~/.local/state/qubesactors/qvm_history (XDG base directory spec).</summary>
    public static string DefaultPath(Func<string, string?> environment)
    {
        var state = environment("XDG_STATE_HOME");
        // The spec says a relative XDG_STATE_HOME is invalid and must be ignored.
        if (string.IsNullOrEmpty(state) || !System.IO.Path.IsPathRooted(state))
        {
            var home = environment("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            state = System.IO.Path.Combine(home, ".local", "state");
        }
        return System.IO.Path.Combine(state, "qubesactors", "qvm_history");
    }

    public static ShellHistory InMemory() => new(null, []);

    /// <summary>Reads the file (missing is empty), keeps its newest <see cref="Limit"/> lines and makes it owner-only.</summary>
    public static ShellHistory Load(string path)
    {
        var lines = File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Length > 0).ToList() : [];
        var history = new ShellHistory(path, lines);
        if (lines.Count > Limit)
        {
            lines.RemoveRange(0, lines.Count - Limit);
            history.Rewrite();
        }
        else if (File.Exists(path) && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, OwnerOnly);
        }
        return history;
    }

    /// <summary>Appends an entered line (not blank, not a repeat of the previous one); trims the file past the limit.</summary>
    public void Add(string line)
    {
        // One line per entry: a pasted multi-line text would come back as several entries.
        line = line.ReplaceLineEndings(" ").TrimEnd();
        if (line.Trim().Length == 0 || (_lines.Count > 0 && _lines[^1] == line))
            return;
        _lines.Add(line);
        if (Path is null)
        {
            if (_lines.Count > Limit)
                _lines.RemoveAt(0);
            return;
        }
        if (_lines.Count > Limit)
        {
            _lines.RemoveRange(0, _lines.Count - Limit);
            Rewrite();
            return;
        }
        using var stream = Open(FileMode.Append);
        using var writer = new StreamWriter(stream);
        writer.WriteLine(line);
    }

    private void Rewrite()
    {
        var temp = Path! + ".tmp";
        using (var stream = Open(FileMode.Create, temp))
        using (var writer = new StreamWriter(stream))
        {
            foreach (var l in _lines)
                writer.WriteLine(l);
        }
        File.Move(temp, Path!, overwrite: true);
    }

    private FileStream Open(FileMode mode, string? path = null)
    {
        path ??= Path!;
        if (System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) is { } dir && !Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(dir);
            else
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = OwnerOnly;
        var stream = new FileStream(path, options);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(stream.SafeFileHandle, OwnerOnly);
        return stream;
    }
}
