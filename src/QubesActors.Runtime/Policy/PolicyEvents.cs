using QubesActors.Core.Events;

namespace QubesActors.Runtime.Policy;

/// <summary>
/// One qrexec policy decision, as the audit record keeps it (stream <see cref="PersistenceId"/>, tag <c>policy</c>).
/// <paramref name="RequestedTarget"/> is the target as the caller named it, <paramref name="NormalizedTarget"/> after
/// §4, <paramref name="Target"/> the resolved target of an allow; <paramref name="Result"/> is what the caller got
/// (<c>allow</c>, <c>deny</c>; an ask is recorded with the answer it got); <paramref name="Evaluated"/> the engine's
/// own result (<c>Allow</c>, <c>Deny</c>, <c>Ask</c>, <c>ParseError</c>); <paramref name="Caller"/> who asked
/// (the policy socket, an Admin API call); <paramref name="LogLine"/> the §7 line.
/// </summary>
public sealed record PolicyDecisionRecorded(
    string Service,
    string Argument,
    string Source,
    string RequestedTarget,
    string NormalizedTarget,
    string? Target,
    string Result,
    string Evaluated,
    string? Reason,
    string? File,
    int? Line,
    string Caller,
    string LogLine) : DomainEvent
{
    public const string PersistenceId = "qrexec-policy";
    public const string Manifest = "policy.decided.v1";
}
