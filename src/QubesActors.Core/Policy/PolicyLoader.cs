using System.Text;

namespace QubesActors.Core.Policy;

/// <summary>Where the loader reads files and included files from (the disk, or in-memory texts).</summary>
internal abstract class PolicyStore
{
    /// <summary>An include path as the directive wrote it, relative to the top-level file's directory.</summary>
    public abstract string Resolve(string baseDirectory, string includedPath);

    /// <summary>The text of an included file, or a syntax error at the directive's line.</summary>
    public abstract string ReadIncluded(string resolvedPath, string file, int line);

    /// <summary>The loadable <c>.policy</c> files of a directory, sorted, or a syntax error at the directive's line.</summary>
    public abstract IReadOnlyList<string> ListDirectory(string resolvedPath, string file, int line);

    /// <summary>The files <c>!compat-4.0</c> includes, as (service, argument, path), in upstream's order.</summary>
    public abstract IReadOnlyList<(string Service, string Argument, string Path)> CompatFiles(string file, int line);

    public abstract string? CompatDirectory { get; }
}

/// <summary>Reads the policy from a list of (directory) loads; shared by the disk and in-memory stores.</summary>
internal sealed class PolicyLoader(PolicyStore store)
{
    // Upstream recurses without a limit (a self-include dies with RecursionError, i.e. the policy fails); we fail cleanly.
    private const int MaxIncludeDepth = 32;

    private readonly List<PolicyRule> rules = [];
    private int depth;

    public List<PolicyRule> Rules => rules;

    /// <summary>Splits at universal newlines (\n, \r\n, \r) as Python's text files do; numbers are physical lines.</summary>
    internal static IEnumerable<(int LineNo, string Line)> Lines(string text)
    {
        var lineNo = 1;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c != '\n' && c != '\r') continue;
            yield return (lineNo++, text[start..i]);
            if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < text.Length)
            yield return (lineNo, text[start..]);
    }

    private void Enter(string file, int line)
    {
        if (++depth > MaxIncludeDepth)
            throw new PolicySyntaxException(file, line, "include nesting too deep (include loop?)");
    }

    public void LoadFile(string text, string file, string baseDirectory)
    {
        foreach (var (lineNo, raw) in Lines(text))
        {
            var line = PolicyRuleParser.PyStrip(raw);
            if (line.Length == 0 || line[0] == '#')
                continue;
            if (line[0] == '!')
            {
                var fields = PolicyRuleParser.SplitFields(line);
                var args = fields.Skip(1).ToList();
                switch (fields[0])
                {
                    case "!include":
                        if (args.Count != 1) throw new PolicySyntaxException(file, lineNo, "invalid number of params");
                        Include(args[0], file, lineNo, baseDirectory);
                        continue;
                    case "!include-dir":
                        if (args.Count != 1) throw new PolicySyntaxException(file, lineNo, "invalid number of params");
                        IncludeDirectory(args[0], file, lineNo, baseDirectory);
                        continue;
                    case "!include-service":
                        if (args.Count != 3) throw new PolicySyntaxException(file, lineNo, "invalid number of params");
                        IncludeService(args[0], args[1], args[2], file, lineNo, baseDirectory);
                        continue;
                    case "!compat-4.0":
                        if (args.Count != 0) throw new PolicySyntaxException(file, lineNo, "invalid number of params");
                        Compat40(file, lineNo);
                        continue;
                    default:
                        throw new PolicySyntaxException(file, lineNo, "invalid directive");
                }
            }
            rules.Add(PolicyRuleParser.FromLine(line, file, lineNo));
        }
    }

    /// <summary>An old-syntax file of <c>!include-service</c>: <c>SOURCE TARGET ACTION[,PARAM…]</c>.</summary>
    public void LoadServiceFile(string service, string argument, string text, string file, string baseDirectory)
    {
        foreach (var (lineNo, raw) in Lines(text))
        {
            var line = PolicyRuleParser.PyStrip(raw);
            if (line.Length == 0 || line[0] == '#')
                continue;
            // Upstream's compatibility substitutions, applied to the whole line in this order.
            line = line.Replace("$include:", "!include ", StringComparison.Ordinal)
                .Replace('$', '@')
                .Replace(',', ' ');
            if (line[0] == '!')
            {
                var fields = PolicyRuleParser.SplitFields(line);
                if (fields[0] != "!include")
                    throw new PolicySyntaxException(file, lineNo, "invalid directive");
                if (fields.Count != 2) throw new PolicySyntaxException(file, lineNo, "invalid number of params");
                IncludeService(service, argument, fields[1], file, lineNo, baseDirectory);
                continue;
            }
            rules.Add(PolicyRuleParser.FromServiceLine(service, argument, line, file, lineNo));
        }
    }

    private void Include(string path, string file, int line, string baseDirectory)
    {
        Enter(file, line);
        var resolved = store.Resolve(baseDirectory, path);
        LoadFile(store.ReadIncluded(resolved, file, line), resolved, baseDirectory);
        depth--;
    }

    private void IncludeDirectory(string path, string file, int line, string baseDirectory)
    {
        Enter(file, line);
        var resolved = store.Resolve(baseDirectory, path);
        foreach (var member in store.ListDirectory(resolved, file, line))
            LoadFile(store.ReadIncluded(member, file, line), member, baseDirectory);
        depth--;
    }

    private void IncludeService(string service, string argument, string path, string file, int line, string baseDirectory)
    {
        PolicyRuleParser.ValidateServiceAndArgument(service, argument, file, line);
        Enter(file, line);
        var resolved = store.Resolve(baseDirectory, path);
        LoadServiceFile(service, argument, store.ReadIncluded(resolved, file, line), resolved, baseDirectory);
        depth--;
    }

    private void Compat40(string file, int line)
    {
        // No compat directory configured: QubesActors has no R4.0 policy files, so this is the empty directory.
        if (store.CompatDirectory is not { } compat)
            return;
        Enter(file, line);
        foreach (var (service, argument, path) in store.CompatFiles(file, line))
        {
            IncludeService(service, argument, path, file, line, compat);
            if (argument == "*") continue;
            // R4.0 denied everything not allowed by an argument-specific file.
            rules.Add(PolicyRuleParser.FromServiceLine(service, argument, "@anyvm @anyvm deny", path, 0));
            rules.Add(PolicyRuleParser.FromServiceLine(service, argument, "@anyvm @adminvm deny", path, 0));
        }
        depth--;
    }

    /// <summary>A policy file name: only <c>0-9 a-z _ . -</c>.</summary>
    internal static bool IsValidFileName(string name) =>
        name.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'z' or '_' or '.' or '-');

    /// <summary>Whether a directory entry is loaded at all: ends in <c>.policy</c>, does not start with a dot.</summary>
    internal static bool IsPolicyFileName(string name) =>
        name.EndsWith(".policy", StringComparison.Ordinal) && !name.StartsWith('.');

    internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}

/// <summary>Policy files on disk.</summary>
internal sealed class DiskPolicyStore(string? compatDirectory) : PolicyStore
{
    public override string? CompatDirectory { get; } = compatDirectory is null ? null : Path.GetFullPath(compatDirectory);

    public override string Resolve(string baseDirectory, string includedPath) =>
        Path.GetFullPath(Path.IsPathRooted(includedPath) ? includedPath : Path.Combine(baseDirectory, includedPath));

    public static string ReadText(string path, string file, int line)
    {
        try
        {
            return File.ReadAllText(path, PolicyLoader.StrictUtf8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw new PolicySyntaxException(file, line, $"failed to load {path} file: {e.Message}");
        }
    }

    public override string ReadIncluded(string resolvedPath, string file, int line) =>
        File.Exists(resolvedPath)
            ? ReadText(resolvedPath, file, line)
            : throw new PolicySyntaxException(file, line, $"not a file: {resolvedPath}");

    /// <summary>The loadable policy files of one directory, sorted by name; an invalid name fails the whole load.</summary>
    public static IReadOnlyList<string> PolicyFilesOf(string directory, string file, int line)
    {
        string[] entries;
        try
        {
            entries = Directory.GetFiles(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicySyntaxException(file, line, $"failed to load {directory} file: {e.Message}");
        }
        var files = entries
            .Where(p => PolicyLoader.IsPolicyFileName(Path.GetFileName(p)) && File.Exists(p))
            .ToList();
        foreach (var path in files)
            if (!PolicyLoader.IsValidFileName(Path.GetFileName(path)))
                throw new PolicySyntaxException(path, 0, $"invalid filename: {path}");
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    public override IReadOnlyList<string> ListDirectory(string resolvedPath, string file, int line) =>
        Directory.Exists(resolvedPath)
            ? PolicyFilesOf(resolvedPath, file, line)
            : throw new PolicySyntaxException(file, line, $"not a directory: {resolvedPath}");

    private static readonly string[] IgnoredCompatSuffixes = [".rpmsave", ".rpmnew", ".swp"];

    public override IReadOnlyList<(string Service, string Argument, string Path)> CompatFiles(string file, int line)
    {
        string[] entries;
        try
        {
            entries = Directory.GetFiles(CompatDirectory!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicySyntaxException(file, line, $"failed to load {CompatDirectory} file: {e.Message}");
        }
        var found = entries
            .Select(p => (Path: p, Name: Path.GetFileName(p)))
            .Where(e => File.Exists(e.Path)
                        && !IgnoredCompatSuffixes.Contains(Path.GetExtension(e.Name), StringComparer.Ordinal)
                        && !e.Name.StartsWith('.')
                        && e.Name.All(c => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '+' or '-' or '.' or '_'))
            .Select(e =>
            {
                var plus = e.Name.IndexOf('+');
                return plus < 0 ? (Service: e.Name, Argument: "*", e.Path) : (Service: e.Name[..plus], Argument: e.Name[plus..], e.Path);
            });
        // Services sorted; per service the argument-specific files first (sorted), the "*" file last.
        return found
            .OrderBy(f => f.Service, StringComparer.Ordinal)
            .ThenBy(f => f.Argument == "*" ? 1 : 0)
            .ThenBy(f => f.Argument, StringComparer.Ordinal)
            .ToList();
    }
}

/// <summary>In-memory texts: includes go through a callback with the path as written.</summary>
internal sealed class MemoryPolicyStore(Func<string, string?>? readInclude) : PolicyStore
{
    public override string? CompatDirectory => null;

    public override string Resolve(string baseDirectory, string includedPath) => includedPath;

    public override string ReadIncluded(string resolvedPath, string file, int line) =>
        readInclude?.Invoke(resolvedPath)
        ?? throw new PolicySyntaxException(file, line, $"no such policy file: {PyRepr.Str(resolvedPath)}");

    public override IReadOnlyList<string> ListDirectory(string resolvedPath, string file, int line) =>
        throw new PolicySyntaxException(file, line, "!include-dir is not supported for an in-memory policy");

    public override IReadOnlyList<(string Service, string Argument, string Path)> CompatFiles(string file, int line) => [];
}
