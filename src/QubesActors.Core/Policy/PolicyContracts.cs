using System.Collections.Immutable;

namespace QubesActors.Core.Policy;

// The data the policy engine exchanges with the rest of QubesActors (docs: ../shared/docs/qrexec-policy.md).
// Parsing and evaluation live next to this file; the runtime (policy actor, policy socket, Admin API) and qvm
// only use these records.

/// <summary>One qube as the policy sees it (qubesd's <c>internal.GetSystemInfo</c> entry).</summary>
public sealed record SystemDomain(
    string Type,
    ImmutableArray<string> Tags,
    bool TemplateForDispVms = false,
    string? DefaultDispVm = null,
    string PowerState = "Halted",
    Guid? Uuid = null,
    bool Internal = false);

/// <summary>Every qube by name; dom0 included (type AdminVM).</summary>
public sealed record SystemInfo(ImmutableSortedDictionary<string, SystemDomain> Domains);

/// <summary>
/// A call to decide: service and argument (the argument with its leading <c>+</c>; a call without argument has
/// argument <c>+</c>), the calling qube, and the target as the caller named it (empty = <c>@default</c>).
/// </summary>
public sealed record PolicyRequest(string Service, string Argument, string Source, string RequestedTarget)
{
    /// <summary>Splits <c>SERVICE[+ARG]</c> at the first <c>+</c>.</summary>
    public static PolicyRequest Of(string serviceAndArgument, string source, string requestedTarget)
    {
        var plus = serviceAndArgument.IndexOf('+');
        return plus < 0
            ? new(serviceAndArgument, "+", source, requestedTarget)
            : new(serviceAndArgument[..plus], serviceAndArgument[plus..], source, requestedTarget);
    }
}

public enum PolicyResult
{
    Allow,
    Deny,
    Ask,
    /// <summary>The policy does not load: every call is denied (reason = the <c>file:line: message</c>).</summary>
    ParseError,
}

/// <summary>Where a rule is: file name as loaded and physical line.</summary>
public sealed record PolicyLocation(string File, int Line)
{
    public override string ToString() => $"{File}:{Line}";
}

/// <summary>
/// A decision, with everything <c>qvm policy eval --json</c> prints: <paramref name="Target"/> the resolved target
/// (allow), <paramref name="User"/> null for the target's default user, <paramref name="TargetsForAsk"/> sorted
/// (ask), <paramref name="Reason"/> the §7 reason text of a deny (or the parse error), <paramref name="Matched"/>
/// the rule that decided, <paramref name="RequestedTarget"/> the normalised requested target.
/// </summary>
public sealed record PolicyDecision(
    PolicyResult Result,
    string? Target,
    string? User,
    bool Notify,
    bool Autostart,
    ImmutableArray<string> TargetsForAsk,
    string? DefaultTarget,
    string? Reason,
    PolicyLocation? Matched,
    string RequestedTarget);

/// <summary>A syntax error: the whole policy fails to load (fail closed).</summary>
public sealed class PolicySyntaxException(string file, int line, string message) : Exception($"{file}:{line}: {message}")
{
    public string File { get; } = file;
    public int Line { get; } = line;
    public string Detail { get; } = message;
}
