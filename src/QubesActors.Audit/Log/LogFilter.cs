using System.Collections.Immutable;
using System.Text.RegularExpressions;
using QubesActors.Audit.Journal;

namespace QubesActors.Audit.Log;

/// <summary>
/// What <c>qubes-audit log</c> keeps. Each given criterion must hold; within <see cref="Qubes"/> and
/// <see cref="Kinds"/> any value matches (like repeated <c>journalctl -u</c>).
/// </summary>
public sealed record LogFilter(
    ImmutableArray<string> Qubes,
    ImmutableArray<string> Kinds,
    ImmutableArray<string> Events,
    string? Caller,
    DateTimeOffset? Since,
    DateTimeOffset? Until,
    Regex? Grep)
{
    public static readonly ImmutableArray<string> KnownKinds = ["lifecycle", "property", "firewall", "device", "policy", "admin", "seal"];

    private const string SealKind = "seal";

    public static LogFilter All { get; } = new([], [], [], null, null, null, null);

    public bool Matches(AuditEvent e)
    {
        // At the precision shown (ms): --until with a time copied from a line includes that line.
        var time = e.Time.AddTicks(-(e.Time.UtcTicks % TimeSpan.TicksPerMillisecond));
        if (Since is { } since && time < since)
            return false;
        if (Until is { } until && time > until)
            return false;
        if (Qubes.Length > 0 && !e.Qubes.Any(q => Qubes.Contains(q, StringComparer.Ordinal)))
            return false;
        if (Kinds.Length > 0 && !e.Kinds.Any(k => Kinds.Contains(k, StringComparer.Ordinal)))
            return false;
        // Seals are bookkeeping (one a second while qubesd writes): shown only when asked for by kind or name.
        if (e.Kinds.Contains(SealKind) && Kinds.Length == 0 && Events.Length == 0)
            return false;
        if (Events.Length > 0 && !Events.Any(name => EventMatches(e, name)))
            return false;
        if (Caller is not null && !CallerMatches(e.Caller, Caller))
            return false;
        return Grep is null || Grep.IsMatch(LogFormat.SearchText(e));
    }

    /// <summary><c>--event started</c>, <c>--event qube.started</c> and the full manifest <c>qube.started.v1</c> all match.</summary>
    public static bool EventMatches(AuditEvent e, string name) =>
        string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase)
        || string.Equals(e.Manifest, name, StringComparison.OrdinalIgnoreCase)
        || string.Equals(e.Name[(e.Name.IndexOf('.') + 1)..], name, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The socket layer records a caller as <c>dom0 (uid=0 pid=24402)</c>: <c>--caller dom0</c> matches it, as does
    /// the whole recorded text.
    /// </summary>
    public static bool CallerMatches(string? recorded, string wanted) =>
        recorded is not null && (string.Equals(recorded, wanted, StringComparison.Ordinal)
                                 || (recorded.StartsWith(wanted, StringComparison.Ordinal) && recorded.AsSpan(wanted.Length).StartsWith(" (")));

    /// <summary>journalctl's smart case: a pattern with no upper-case letter ignores case.</summary>
    public static Regex GrepPattern(string pattern) =>
        new(pattern, (pattern.Any(char.IsUpper) ? RegexOptions.None : RegexOptions.IgnoreCase) | RegexOptions.CultureInvariant,
            TimeSpan.FromSeconds(1));
}
