using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>The policy language of QubesActors.Core.Policy behind <see cref="IPolicyEngine"/>.</summary>
public sealed class QrexecPolicyEngine(string? compatDirectory = null) : IPolicyEngine
{
    public ILoadedPolicy LoadDirectories(IReadOnlyList<string> directories) =>
        new Loaded(CompiledPolicy.LoadDirectories(directories, compatDirectory));

    public PolicyDecision ParseError(PolicySyntaxException error, PolicyRequest request) => PolicyDecisions.ParseError(error, request);

    public string LogLine(PolicyRequest request, PolicyDecision decision) => PolicyDecisions.LogLine(request, decision);

    private sealed class Loaded(CompiledPolicy policy) : ILoadedPolicy
    {
        public PolicyDecision Evaluate(PolicyRequest request, SystemInfo system) => policy.Evaluate(request, system);

        public PolicyDecision Answer(PolicyDecision ask, PolicyRequest request, SystemInfo system, string? allowTarget) =>
            policy.Answer(ask, request, system, allowTarget);
    }
}
