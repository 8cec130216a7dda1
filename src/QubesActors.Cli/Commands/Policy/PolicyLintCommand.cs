using System.CommandLine;
using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Policy;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// qvm policy lint [DIR...]: every error as <c>FILE:LINE: MESSAGE</c> on stdout, exit 1 if there is any. The loader
/// stops at the first error (fail closed), so each top-level file is also parsed on its own: the first error of every
/// file is reported, the whole load's error with the daemon's exact wording.
/// </summary>
internal static class PolicyLintCommand
{
    /// <summary>The in-memory parser cannot list a directory; only the whole (disk) load judges <c>!include-dir</c>.</summary>
    private const string IncludeDirUnsupported = "!include-dir is not supported";

    public static Command Create(QvmContext context)
    {
        var dirs = new Argument<string[]>("DIR") { Description = "Policy directories, the first winning for a name (default: the daemon's config/policy.d)", Arity = ArgumentArity.ZeroOrMore };
        var output = Qvm.OutputOption();
        var command = new Command("lint", "Check policy files; print every error as FILE:LINE: MESSAGE");
        command.Arguments.Add(dirs);
        command.Options.Add(output);
        command.SetQvmAction(context, inv =>
        {
            var given = inv.Get(dirs) ?? [];
            IReadOnlyList<string> directories = given.Length > 0 ? given : [DefaultDirectory()];
            foreach (var dir in directories)
            {
                Invocation.RejectOption(dir);
                if (!Directory.Exists(dir))
                    throw new QvmUsageException($"no such directory: '{dir}'");
            }
            var errors = Lint(directories);
            if (inv.Json(output))
                inv.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var e in errors)
                    {
                        w.WriteStartObject();
                        w.WriteString("file", e.File);
                        w.WriteNumber("line", e.Line);
                        w.WriteString("message", e.Detail);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
            else
                foreach (var e in errors)
                    inv.Out.WriteCells(e.Message);
            return Task.FromResult(errors.Count == 0 ? Qvm.ExitOk : Qvm.ExitError);
        });
        return command;
    }

    /// <summary>qubesd's config/policy.d: next to the binary when qubesd.conf is there (an install), else the working directory's config/ (as qubesd).</summary>
    public static string DefaultDirectory()
    {
        var beside = AppContext.BaseDirectory;
        var config = File.Exists(Path.Combine(beside, "qubesd.conf")) ? beside : Path.GetFullPath("config");
        return Path.Combine(config, "policy.d");
    }

    public static IReadOnlyList<PolicySyntaxException> Lint(IReadOnlyList<string> directories)
    {
        PolicySyntaxException whole;
        try
        {
            CompiledPolicy.LoadDirectories(directories);
            return [];
        }
        catch (PolicySyntaxException e)
        {
            whole = e;
        }
        // The whole load's error first: on a clash (same file and line) its wording, which is the daemon's, is kept.
        var errors = new List<PolicySyntaxException> { whole };
        var seen = new HashSet<(string, int)> { (whole.File, whole.Line) };
        foreach (var path in TopLevelFiles(directories))
        {
            var error = ParseAlone(path);
            if (error is null || error.Detail.StartsWith(IncludeDirUnsupported, StringComparison.Ordinal))
                continue;
            if (seen.Add((error.File, error.Line)))
                errors.Add(error);
        }
        return [.. errors.OrderBy(e => e.File, StringComparer.Ordinal).ThenBy(e => e.Line)];
    }

    /// <summary>The files the loader would read: <c>*.policy</c> not starting with a dot, the first directory winning for a name.</summary>
    private static IEnumerable<string> TopLevelFiles(IReadOnlyList<string> directories)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in directories)
        {
            string[] entries;
            try
            {
                entries = Directory.GetFiles(Path.GetFullPath(dir));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var path in entries.Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(path);
                if (name.EndsWith(".policy", StringComparison.Ordinal) && !name.StartsWith('.') && seen.Add(name))
                    yield return path;
            }
        }
    }

    /// <summary>
    /// One file parsed by itself, its includes read from disk relative to its directory (as the loader resolves them)
    /// and named by full path in errors, as the disk loader names them.
    /// </summary>
    private static PolicySyntaxException? ParseAlone(string path)
    {
        var directory = Path.GetDirectoryName(path)!;
        string FullPath(string written) => Path.GetFullPath(Path.IsPathRooted(written) ? written : Path.Combine(directory, written));
        try
        {
            CompiledPolicy.Parse(path, File.ReadAllText(path), written => File.Exists(FullPath(written)) ? File.ReadAllText(FullPath(written)) : null);
            return null;
        }
        catch (PolicySyntaxException e)
        {
            return Path.IsPathRooted(e.File) ? e : new PolicySyntaxException(FullPath(e.File), e.Line, e.Detail);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.DecoderFallbackException)
        {
            // The whole load reported it already (failed to load ... file), at line 0 of this file.
            return new PolicySyntaxException(path, 0, $"failed to load {path} file: {e.Message}");
        }
    }
}
