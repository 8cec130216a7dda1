using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>Messages to and from <see cref="PolicyActor"/> (/user/policy).</summary>
public static class PolicyProtocol
{
    /// <summary>
    /// Decide a call. <paramref name="Caller"/> is who asks (recorded in the journal); <paramref name="State"/> the
    /// collection to decide against when the caller already has one, else the actor asks /user/qubes.
    /// Answered with a <see cref="PolicyOutcome"/>.
    /// </summary>
    public sealed record EvaluatePolicy(PolicyRequest Request, PolicyCallOptions Options, string Caller, CollectionState? State = null);

    /// <summary>
    /// Evaluate without carrying anything out (<c>policy.Evaluate</c>, <c>qvm policy eval</c>): the policy's decision
    /// against the live collection, an ask followed through with <paramref name="AskAnswer"/> when given
    /// (<c>deny</c> or <c>allow:TARGET</c>). Nothing is journaled: no call was made. Answered with a PolicyDecision.
    /// </summary>
    public sealed record DryRunPolicy(PolicyRequest Request, string? AskAnswer);

    /// <summary>
    /// A qrexec call made from dom0 (<c>qvm run</c>, <c>qvm copy-to-vm</c>): dom0 is not subject to the policy, as in
    /// Qubes, but the call is journaled with the decisions (result allow, reason saying why). Not answered.
    /// </summary>
    public sealed record RecordDom0Call(PolicyRequest Request, string Target, string Caller);

    /// <summary>Answered with <see cref="PolicyStatus"/>.</summary>
    public sealed record GetPolicyStatus;

    /// <summary>Whether the policy loads; <paramref name="Error"/> the load error (every call is then denied).</summary>
    public sealed record PolicyStatus(bool Loaded, string? Error, DateTimeOffset Since, int Loads);

    /// <summary>Reload now (the watcher does this by itself; tests and <c>qvm policy reload</c>). Answered with <see cref="PolicyStatus"/>.</summary>
    public sealed record ReloadPolicy;

    /// <summary>policy.List / policy.include.List. Answered with <see cref="PolicyAdminReply"/>.</summary>
    public sealed record ListPolicyFiles(PolicyFileKind Kind);

    /// <summary>policy.Get / policy.include.Get. Answered with <see cref="PolicyAdminReply"/>.</summary>
    public sealed record GetPolicyFile(PolicyFileKind Kind, string Name);

    /// <summary>policy.Replace / Remove (and include.*): validated, written and swapped in at once. Answered with <see cref="PolicyAdminReply"/>.</summary>
    public sealed record ChangePolicyFile(PolicyFileChange Change, string Method, string Caller);

    public sealed record PolicyAdminReply(string Output, QubesError? Error = null);
}
