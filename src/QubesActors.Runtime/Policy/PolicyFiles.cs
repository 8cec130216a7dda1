using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using QubesActors.Core.Errors;
using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>The policy directories: <see cref="RuntimeDir"/> (edited by the Admin API, read first) and <see cref="ConfigDir"/> (shipped).</summary>
public sealed record PolicyDirectories(string RuntimeDir, string ConfigDir)
{
    public string IncludeDir => Path.Combine(RuntimeDir, "include");
    public IReadOnlyList<string> LoadOrder => [RuntimeDir, ConfigDir];
}

/// <summary>Which file an Admin API call names: a top-level <c>NAME.policy</c> or an include file <c>include/NAME</c>.</summary>
public enum PolicyFileKind
{
    Policy,
    Include,
}

/// <summary>A policy change asked through the Admin API; <see cref="Content"/> null removes the file.</summary>
public sealed record PolicyFileChange(PolicyFileKind Kind, string Name, string Token, string? Content);

/// <summary>
/// The policy Admin API's file operations (upstream's <c>qrexec/policy/admin.py</c> semantics): names, tokens
/// (<c>sha256:HEX</c> of the file, <c>new</c>, <c>any</c>), and a change that is validated by loading the whole
/// resulting policy before anything is written.
/// </summary>
public static partial class PolicyFiles
{
    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex NamePattern();

    public static string Token(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    public static string PathOf(PolicyDirectories dirs, PolicyFileKind kind, string untrustedName)
    {
        if (!NamePattern().IsMatch(untrustedName))
            throw new ProtocolError($"Invalid policy file name: {untrustedName}\nNames must contain only alphanumeric characters, underscore and hyphen.");
        return kind == PolicyFileKind.Policy ? Path.Combine(dirs.RuntimeDir, untrustedName + ".policy") : Path.Combine(dirs.IncludeDir, untrustedName);
    }

    /// <summary>File names (without <c>.policy</c> for top-level files), sorted, one per line.</summary>
    public static string List(PolicyDirectories dirs, PolicyFileKind kind)
    {
        var dir = kind == PolicyFileKind.Policy ? dirs.RuntimeDir : dirs.IncludeDir;
        if (!Directory.Exists(dir))
            return "";
        var names = new DirectoryInfo(dir).EnumerateFiles()
            .Select(f => f.Name)
            .Where(n => kind == PolicyFileKind.Include || n.EndsWith(".policy", StringComparison.Ordinal))
            .Select(n => kind == PolicyFileKind.Policy ? n[..^".policy".Length] : n)
            .Order(StringComparer.Ordinal);
        var text = new StringBuilder();
        foreach (var n in names)
            text.Append(n).Append('\n');
        return text.ToString();
    }

    /// <summary><c>TOKEN\nCONTENT</c>.</summary>
    public static string Get(PolicyDirectories dirs, PolicyFileKind kind, string untrustedName)
    {
        var path = PathOf(dirs, kind, untrustedName);
        if (!File.Exists(path))
            throw new QubesError($"Not found: {untrustedName}");
        var bytes = File.ReadAllBytes(path);
        return Token(bytes) + "\n" + Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Splits a Replace payload into token and content.</summary>
    public static (string Token, string Content) SplitPayload(string payload)
    {
        var newline = payload.IndexOf('\n');
        return newline < 0
            ? throw new ProtocolError("Payload needs to include first line with token")
            : (payload[..newline], payload[(newline + 1)..]);
    }

    public static void CheckToken(string path, string token)
    {
        switch (token)
        {
            case "any":
                return;
            case "new":
                if (File.Exists(path))
                    throw new QubesError("File exists but token is 'new'");
                return;
        }
        if (!token.StartsWith("sha256:", StringComparison.Ordinal))
            throw new ProtocolError("Unrecognized token");
        if (!File.Exists(path))
            throw new QubesError("File doesn't exist, but token isn't 'new'");
        if (Token(File.ReadAllBytes(path)) != token)
            throw new QubesError("Token mismatch");
    }

    /// <summary>
    /// Checks the token, loads the policy as it would be after the change (a copy of the runtime directory with the
    /// change applied, then the config directory), and only then writes the file (write aside, rename). Returns the
    /// policy that loaded, so the caller can swap it in.
    /// </summary>
    public static ILoadedPolicy Apply(PolicyDirectories dirs, IPolicyEngine engine, PolicyFileChange change)
    {
        var path = PathOf(dirs, change.Kind, change.Name);
        CheckToken(path, change.Token);
        if (change.Content is null && !File.Exists(path))
            throw new QubesError($"Not found: {change.Name}");
        var staging = Path.Combine(Path.GetTempPath(), $"qubesd-policy-{Guid.NewGuid():N}");
        try
        {
            CopyDirectory(dirs.RuntimeDir, staging);
            var staged = Path.Combine(staging, Path.GetRelativePath(dirs.RuntimeDir, path));
            if (change.Content is null)
                File.Delete(staged);
            else
            {
                Directory.CreateDirectory(Path.GetDirectoryName(staged)!);
                File.WriteAllText(staged, change.Content, new UTF8Encoding(false));
            }
            try
            {
                engine.LoadDirectories([staging, dirs.ConfigDir]);
            }
            catch (PolicySyntaxException e)
            {
                // The loader names files by full path: show the runtime directory, not the staging copy.
                throw new QubesValueError($"Policy change validation failed: {e.Message.Replace(staging, dirs.RuntimeDir, StringComparison.Ordinal)}");
            }
        }
        finally
        {
            try
            {
                Directory.Delete(staging, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        if (change.Content is null)
            File.Delete(path);
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Never a half-written file for the watcher to load: write beside, then rename over.
            var aside = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".new");
            File.WriteAllText(aside, change.Content, new UTF8Encoding(false));
            File.Move(aside, path, overwrite: true);
        }
        return engine.LoadDirectories(dirs.LoadOrder);
    }

    /// <summary>
    /// Installs the files of <paramref name="seedDir"/> (recursively) into <paramref name="runtimeDir"/> where missing:
    /// the admin policy's includes must live beside the file that includes them, in the directory the Admin API edits.
    /// Existing files are never overwritten (they may have been edited). Returns the files installed.
    /// </summary>
    public static IReadOnlyList<string> Seed(string seedDir, string runtimeDir)
    {
        var installed = new List<string>();
        if (!Directory.Exists(seedDir))
            return installed;
        foreach (var file in Directory.EnumerateFiles(seedDir, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(seedDir, file);
            var target = Path.Combine(runtimeDir, relative);
            if (File.Exists(target))
                continue;
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
            installed.Add(relative);
        }
        return installed;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        if (!Directory.Exists(from))
            return;
        foreach (var file in Directory.EnumerateFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.EnumerateDirectories(from))
            CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
    }
}
