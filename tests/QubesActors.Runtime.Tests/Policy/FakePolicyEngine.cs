using QubesActors.Core.Policy;
using QubesActors.Runtime.Policy;

namespace QubesActors.Runtime.Tests.Policy;

/// <summary>
/// A tiny stand-in language, so the runtime is tested apart from the real one: lines <c>SERVICE SOURCE TARGET ACTION</c>
/// (<c>*</c> matches anything), first match wins; <c>!broken</c> is a syntax error. Files are merged by name (earlier
/// directory wins) and read in name order, as the real loader does.
/// </summary>
internal sealed class FakePolicyEngine : IPolicyEngine
{
    public int Loads { get; private set; }

    public ILoadedPolicy LoadDirectories(IReadOnlyList<string> directories)
    {
        Loads++;
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var dir in directories.Where(Directory.Exists))
            foreach (var path in Directory.EnumerateFiles(dir, "*.policy"))
                files.TryAdd(Path.GetFileName(path), path);
        var rules = new List<(string Service, string Source, string Target, string Action, PolicyLocation At)>();
        foreach (var (name, path) in files)
        {
            var lines = File.ReadAllLines(path);
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i].Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                    continue;
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length != 4 || f[3] is not ("allow" or "deny" or "ask"))
                    throw new PolicySyntaxException(name, i + 1, "invalid rule");
                rules.Add((f[0], f[1], f[2], f[3], new PolicyLocation(name, i + 1)));
            }
        }
        return new Loaded(rules);
    }

    public PolicyDecision ParseError(PolicySyntaxException error, PolicyRequest request) =>
        new(PolicyResult.ParseError, null, null, false, false, [], null, error.Message, null, Normalized(request));

    public string LogLine(PolicyRequest request, PolicyDecision decision) => decision.Result switch
    {
        PolicyResult.Allow => $"qrexec: {request.Service}{request.Argument}: {request.Source} -> {decision.RequestedTarget}: allowed to {decision.Target}",
        PolicyResult.ParseError => $"qrexec: {request.Service}{request.Argument}: {request.Source} -> {request.RequestedTarget}: error loading policy: {decision.Reason}",
        _ => $"qrexec: {request.Service}{request.Argument}: {request.Source} -> {request.RequestedTarget}: denied: {decision.Reason}",
    };

    private static string Normalized(PolicyRequest r) => r.RequestedTarget.Length == 0 ? "@default" : r.RequestedTarget;

    private sealed class Loaded(List<(string Service, string Source, string Target, string Action, PolicyLocation At)> rules) : ILoadedPolicy
    {
        public PolicyDecision Evaluate(PolicyRequest request, SystemInfo system)
        {
            var target = Normalized(request);
            foreach (var r in rules)
            {
                if (r.Service != "*" && r.Service != request.Service || r.Source != "*" && r.Source != request.Source || r.Target != "*" && r.Target != target)
                    continue;
                return r.Action switch
                {
                    "allow" => new(PolicyResult.Allow, target, null, false, true, [], null, null, r.At, target),
                    "ask" => new(PolicyResult.Ask, null, null, false, true, [target], null, null, r.At, target),
                    _ => new(PolicyResult.Deny, null, null, true, false, [], null, $"denied by policy {r.At}", r.At, target),
                };
            }
            return new(PolicyResult.Deny, null, null, true, false, [], null, "no matching rule found", null, target);
        }

        public PolicyDecision Answer(PolicyDecision ask, PolicyRequest request, SystemInfo system, string? allowTarget) =>
            allowTarget is null
                ? ask with { Result = PolicyResult.Deny, Reason = $"denied by the user {ask.Matched}" }
                : ask.TargetsForAsk.Contains(allowTarget)
                    ? ask with { Result = PolicyResult.Allow, Target = allowTarget }
                    : ask with { Result = PolicyResult.Deny, Reason = $"target {allowTarget} is not a valid choice", Notify = true };
    }
}
