using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>
/// The seam between the runtime (actor, socket, Admin API) and the policy language (QubesActors.Core.Policy). The
/// runtime only loads, evaluates and formats through this, so it is tested with a small fake language and the real
/// one is bound in one adapter (<see cref="QrexecPolicyEngine"/>).
/// </summary>
public interface IPolicyEngine
{
    /// <summary>Loads every <c>.policy</c> file of the directories (earlier directories win by name); throws <see cref="PolicySyntaxException"/>.</summary>
    ILoadedPolicy LoadDirectories(IReadOnlyList<string> directories);

    /// <summary>The deny decision every call gets while the policy does not load.</summary>
    PolicyDecision ParseError(PolicySyntaxException error, PolicyRequest request);

    /// <summary>The §7 log line of a decision (<c>qrexec: svc+arg: src -> tgt: ...</c>).</summary>
    string LogLine(PolicyRequest request, PolicyDecision decision);
}

/// <summary>A policy that loaded: immutable, so it is shared with any thread.</summary>
public interface ILoadedPolicy
{
    PolicyDecision Evaluate(PolicyRequest request, SystemInfo system);

    /// <summary>The user's answer to an ask decision: <paramref name="allowTarget"/> null = denied by the user.</summary>
    PolicyDecision Answer(PolicyDecision ask, PolicyRequest request, SystemInfo system, string? allowTarget);
}
