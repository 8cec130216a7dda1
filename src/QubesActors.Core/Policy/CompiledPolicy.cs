using System.Collections.Frozen;
using System.Collections.Immutable;

namespace QubesActors.Core.Policy;

/// <summary>
/// A loaded qrexec policy (docs/policy.md): the ordered rules, indexed by service so a decision only looks at the rules
/// of the requested service and the <c>*</c>-service rules, in rule order. Immutable; safe to share between threads.
/// </summary>
public sealed class CompiledPolicy
{
    private readonly PolicyRule[] rules;
    // Per service: the indices of its rules merged with the "*"-service rules, ascending (= rule order).
    private readonly FrozenDictionary<string, int[]> candidatesByService;
    private readonly int[] anyServiceRules;

    // §6 ask lists are a pure function of (this policy, the system info, service, argument, source): kept per system
    // info so that repeated asks (the same caller for the same service) do not walk the service's rules again.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SystemIndex, System.Collections.Concurrent.ConcurrentDictionary<(string, string, string), ImmutableArray<string>>> askLists = new();
    private const int MaxAskListsPerSystem = 4096;

    public IReadOnlyList<PolicyRule> Rules => rules;
    public int Count => rules.Length;

    /// <summary>An empty policy: every call is denied (<c>no matching rule found</c>).</summary>
    public static CompiledPolicy Empty { get; } = new([]);

    internal CompiledPolicy(IReadOnlyList<PolicyRule> rules)
    {
        this.rules = [.. rules];
        var buckets = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var any = new List<int>();
        for (var i = 0; i < this.rules.Length; i++)
        {
            var rule = this.rules[i];
            if (rule.AnyService)
            {
                any.Add(i);
                continue;
            }
            if (!buckets.TryGetValue(rule.Service, out var list))
                buckets[rule.Service] = list = [];
            list.Add(i);
        }
        anyServiceRules = [.. any];
        candidatesByService = buckets.ToFrozenDictionary(
            kv => kv.Key, kv => MergeAscending(kv.Value, anyServiceRules), StringComparer.Ordinal);
    }

    private static int[] MergeAscending(List<int> a, int[] b)
    {
        var merged = new int[a.Count + b.Length];
        int i = 0, j = 0, k = 0;
        while (i < a.Count && j < b.Length)
            merged[k++] = a[i] < b[j] ? a[i++] : b[j++];
        while (i < a.Count) merged[k++] = a[i++];
        while (j < b.Length) merged[k++] = b[j++];
        return merged;
    }

    // ---------------------------------------------------------------- loading

    /// <summary>
    /// Loads the <c>*.policy</c> files of <paramref name="directories"/> (runtime directory first: the first directory
    /// holding a name wins), sorted by name. A directory that does not exist is skipped. <paramref name="compatDirectory"/>
    /// is where <c>!compat-4.0</c> reads R4.0 files; null makes the directive a no-op. Files in messages and locations are
    /// full paths. Throws <see cref="PolicySyntaxException"/> for any error (the whole policy fails).
    /// </summary>
    public static CompiledPolicy LoadDirectories(IReadOnlyList<string> directories, string? compatDirectory = null)
    {
        var store = new DiskPolicyStore(compatDirectory);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var files = new List<(string Name, string Path)>();
        foreach (var directory in directories)
        {
            var full = Path.GetFullPath(directory);
            if (!Directory.Exists(full))
                continue;
            foreach (var path in DiskPolicyStore.PolicyFilesOf(full, full, 0))
            {
                var name = Path.GetFileName(path);
                if (seen.Add(name))
                    files.Add((name, path));
            }
        }
        files.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var loader = new PolicyLoader(store);
        foreach (var (_, path) in files)
            loader.LoadFile(DiskPolicyStore.ReadText(path, path, 0), path, Path.GetDirectoryName(path)!);
        return new CompiledPolicy(loader.Rules);
    }

    /// <summary>
    /// The same from in-memory files (name, text): names are checked like file names (base name of <c>0-9 a-z _ . -</c>),
    /// duplicates by base name keep the first, files are sorted by base name; the suffix is not checked. Includes are
    /// read through <paramref name="readInclude"/> with the path as written (null = not found); <c>!include-dir</c> is
    /// an error and <c>!compat-4.0</c> a no-op here.
    /// </summary>
    public static CompiledPolicy Parse(IReadOnlyList<(string Name, string Text)> files, Func<string, string?>? readInclude = null)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var ordered = new List<(string BaseName, string Name, string Text)>();
        foreach (var (name, text) in files)
        {
            var baseName = name[(name.LastIndexOf('/') + 1)..];
            if (!PolicyLoader.IsValidFileName(baseName))
                throw new PolicySyntaxException(name, 0, $"invalid filename: {name}");
            if (seen.Add(baseName))
                ordered.Add((baseName, name, text));
        }
        ordered.Sort((a, b) => string.CompareOrdinal(a.BaseName, b.BaseName));
        var loader = new PolicyLoader(new MemoryPolicyStore(readInclude));
        foreach (var (_, name, text) in ordered)
            loader.LoadFile(text, name, "");
        return new CompiledPolicy(loader.Rules);
    }

    /// <summary>One in-memory file (tests, validation of a single file).</summary>
    public static CompiledPolicy Parse(string name, string text, Func<string, string?>? readInclude = null) =>
        Parse([(name, text)], readInclude);

    // ---------------------------------------------------------------- evaluation

    /// <summary>Decides a call (docs/policy.md §4–§6). Never throws: an internal failure is a deny.</summary>
    public PolicyDecision Evaluate(PolicyRequest request, SystemInfo system)
    {
        try
        {
            return EvaluateCore(request, system);
        }
        catch (Exception e)
        {
            // Fail closed; the property tests make sure this is not reached.
            return PolicyDecisions.Deny($"internal policy error: {e.Message}", notify: false, null,
                request.RequestedTarget.Length == 0 ? "@default" : request.RequestedTarget);
        }
    }

    internal PolicyDecision EvaluateCore(PolicyRequest request, SystemInfo system)
    {
        var index = SystemIndex.Of(system);
        var normalised = Normalise(request.RequestedTarget, index, out var early);
        if (normalised is null)
            return early!;
        var call = new Call(request, normalised, index);
        var candidates = CandidatesFor(request.Service);
        foreach (var i in candidates)
        {
            var rule = rules[i];
            if (call.MatchesButTarget(rule) && call.MatchesTarget(rule.Target))
                return Decide(rule, call, candidates);
        }
        return PolicyDecisions.Deny("no matching rule found", notify: true, null, normalised.Text);
    }

    private int[] CandidatesFor(string service) =>
        candidatesByService.TryGetValue(service, out var list) ? list : anyServiceRules;

    private static readonly PolicyToken DefaultToken = new(PolicyTokenKind.Default, "@default", "@default");

    /// <summary>§4: the requested target as the rules see it, or null and the early decision (deny / error).</summary>
    internal static PolicyToken? Normalise(string requested, SystemIndex index, out PolicyDecision? early)
    {
        early = null;
        var raw = requested.Length == 0 ? "@default" : requested;
        var token = PolicyToken.TryParse(raw, PolicyTokenColumn.IntendedTarget, out var error);
        if (token is null)
        {
            // Upstream raises a syntax error without file: logged as a policy load error, no notification.
            early = new PolicyDecision(PolicyResult.ParseError, null, null, false, false, [], null,
                $"<unknown>:0: {error}", null, raw);
            return null;
        }
        switch (token.Kind)
        {
            case PolicyTokenKind.Name when !index.Contains(raw):
                return DefaultToken;
            case PolicyTokenKind.DispVmTemplate
                when !index.TryGet(token.Value, out _, out var template) || !template.TemplateForDispVms:
                early = PolicyDecisions.Deny($"not a template for dispvm: {token.Value}", notify: true, null, raw);
                return null;
            default:
                return token;
        }
    }

    private PolicyDecision Decide(PolicyRule rule, Call call, int[] candidates) => rule.Action switch
    {
        PolicyAction.Deny => PolicyDecisions.Deny($"denied by policy {rule.Location}", rule.Notify, rule.Location,
            call.Target.Text),
        PolicyAction.Allow => ResolveAllow((rule.Redirect ?? call.Target).Text, rule.Location, rule.User, rule.Notify,
            rule.Autostart, call.Request.Source, call.Index, call.Target.Text),
        _ => Ask(rule, call, candidates),
    };

    /// <summary>§6 allow: the target checked and resolved (also for the user's answer to an ask).</summary>
    internal static PolicyDecision ResolveAllow(
        string targetText, PolicyLocation location, string? user, bool notify, bool autostart,
        string source, SystemIndex index, string requestedTarget)
    {
        var token = PolicyToken.TryParse(targetText, PolicyTokenColumn.IntendedTarget, out _);
        if (token is null)
            return PolicyDecisions.Deny($"policy define 'allow' action at {location} but no target is specified by caller or policy",
                notify: true, location, requestedTarget);
        if (token.Kind == PolicyTokenKind.Name && !index.Contains(token.Text))
            token = DefaultToken;
        if (token.Kind == PolicyTokenKind.DispVmTemplate
            && (!index.TryGet(token.Value, out _, out var template) || !template.TemplateForDispVms))
            return PolicyDecisions.Deny($"not a template for dispvm: {token.Value}", notify: true, location, requestedTarget);

        string target;
        switch (token.Kind)
        {
            case PolicyTokenKind.Default:
                return PolicyDecisions.Deny(
                    $"policy define 'allow' action at {location} but no target is specified by caller or policy",
                    notify: true, location, requestedTarget);
            case PolicyTokenKind.DispVm:
                if (index.DispVmTemplateOf(source) is not { } dispvm)
                    return PolicyDecisions.Deny(
                        $"policy define 'allow' action to @dispvm at {location} but no DispVM base is set for this VM",
                        notify: true, location, requestedTarget);
                target = dispvm;
                break;
            case PolicyTokenKind.AdminVm:
                target = "dom0"; // uuid:0…0 stays as written (gotcha 7)
                break;
            default:
                target = token.Text;
                break;
        }

        if (!autostart && !AllowedWithoutAutostart(target, index))
            return PolicyDecisions.Deny($"target {target} is denied because it would require autostart", notify, location,
                requestedTarget);
        return new PolicyDecision(PolicyResult.Allow, target, user, notify, autostart, [], null, null, location, requestedTarget);
    }

    private static bool AllowedWithoutAutostart(string target, SystemIndex index)
    {
        if (PolicyToken.IsDom0Alias(target)) return true;
        if (target.StartsWith("@dispvm", StringComparison.Ordinal)) return false;
        return index.Get(target)?.PowerState == "Running";
    }

    private PolicyDecision Ask(PolicyRule rule, Call call, int[] candidates)
    {
        var source = call.Request.Source;
        var list = rule.Redirect is { } redirect
            ? [redirect.IsDom0 ? "dom0" : redirect.Text] // not expanded, not checked (gotcha 6)
            : AskList(call, candidates);
        if (!rule.Autostart)
            list = [.. list.Where(t => AllowedWithoutAutostart(t, call.Index))];
        if (list.IsEmpty)
            return PolicyDecisions.Deny(
                $"policy define 'ask' action at {rule.Location} but no target is available to choose from",
                notify: true, rule.Location, call.Target.Text);

        string? defaultTarget = rule.DefaultTarget switch
        {
            null => null,
            { Kind: PolicyTokenKind.DispVm } => call.Index.DispVmTemplateOf(source),
            { IsDom0: true } => "dom0",
            var t => t.Text,
        };
        if (defaultTarget is not null && !list.Contains(defaultTarget, StringComparer.Ordinal))
            defaultTarget = null;
        return new PolicyDecision(PolicyResult.Ask, null, rule.User, rule.Notify, rule.Autostart, list, defaultTarget, null,
            rule.Location, call.Target.Text);
    }

    /// <summary>The sorted candidates of <see cref="CollectTargetsForAsk"/>, memoised per system info (bounded).</summary>
    private ImmutableArray<string> AskList(Call call, int[] candidates)
    {
        var lists = askLists.GetValue(call.Index, static _ => new());
        var key = (call.Request.Service, call.Request.Argument, call.Request.Source);
        if (lists.TryGetValue(key, out var cached))
            return cached;
        var list = CollectTargetsForAsk(call, candidates).Order(StringComparer.Ordinal).ToImmutableArray();
        if (lists.Count < MaxAskListsPerSystem)
            lists.TryAdd(key, list);
        return list;
    }

    /// <summary>§6 ask: every rule matching service, argument and source, bottom-up, adds or removes its expansion.</summary>
    private HashSet<string> CollectTargetsForAsk(Call call, int[] candidates)
    {
        var index = call.Index;
        var targets = new HashSet<string>(StringComparer.Ordinal);
        for (var c = candidates.Length - 1; c >= 0; c--)
        {
            var rule = rules[candidates[c]];
            if (!call.MatchesButTarget(rule))
                continue;
            var token = rule.Action == PolicyAction.Deny ? rule.Target : rule.Redirect ?? rule.Target;
            var expansion = index.Expansions.GetOrAdd(token.Text, static (_, state) =>
                Expand(state.token, state.index).Select(c => UuidToName(c, state.index)).OfType<string>()
                    .Distinct(StringComparer.Ordinal).ToArray(), (token, index));
            if (rule.Action == PolicyAction.Deny)
                targets.ExceptWith(expansion);
            else
                targets.UnionWith(expansion);
        }

        var source = call.Request.Source;
        if (targets.Remove("@dispvm") && index.DispVmTemplateOf(source) is { } dispvm)
            targets.Add(dispvm);
        if (targets.Remove("@adminvm"))
            targets.Add("dom0");
        // The caller itself (by name and by uuid) is never offered.
        var sourceName = source.StartsWith("uuid:", StringComparison.Ordinal) && index.TryGet(source, out var n, out _) ? n : source;
        targets.Remove(sourceName);
        if (index.UuidOf(source) is { } sourceUuid)
            targets.Remove("uuid:" + sourceUuid);
        // Internal qubes are never offered; a candidate naming no qube is dropped too (upstream fails on it).
        targets.RemoveWhere(t =>
        {
            var name = t.StartsWith("@dispvm:", StringComparison.Ordinal) ? t[8..] : t;
            return index.Get(name) is not { } domain || domain.Internal;
        });
        return targets;
    }

    private static IEnumerable<string> Expand(PolicyToken token, SystemIndex index)
    {
        switch (token.Kind)
        {
            case PolicyTokenKind.Name:
                if (index.Contains(token.Text)) yield return token.Text;
                break;
            case PolicyTokenKind.AdminVm:
                yield return "@adminvm";
                break;
            case PolicyTokenKind.Wildcard:
            case PolicyTokenKind.AnyVm:
                foreach (var (name, domain) in index.Qubes)
                {
                    if (token.Kind == PolicyTokenKind.Wildcard || !PolicyToken.IsDom0Alias(name))
                        yield return name;
                    if (domain.TemplateForDispVms)
                        yield return "@dispvm:" + name;
                }
                yield return "@dispvm";
                break;
            case PolicyTokenKind.Type:
                foreach (var (name, domain) in index.Qubes)
                    if (domain.Type == token.Value) yield return name;
                break;
            case PolicyTokenKind.Tag:
                foreach (var (name, domain) in index.Qubes)
                    if (domain.Tags.Contains(token.Value)) yield return name;
                break;
            case PolicyTokenKind.DispVm:
                yield return "@dispvm";
                break;
            case PolicyTokenKind.DispVmTemplate:
                // A template that does not exist offers nothing (upstream fails on it).
                if (index.Get(token.Value) is { TemplateForDispVms: true })
                    yield return token.Text;
                break;
            case PolicyTokenKind.DispVmTag:
                foreach (var (name, domain) in index.Qubes)
                    if (domain.TemplateForDispVms && domain.Tags.Contains(token.Value))
                        yield return "@dispvm:" + name;
                break;
        }
    }

    private static string? UuidToName(string candidate, SystemIndex index)
    {
        if (candidate.StartsWith("uuid:", StringComparison.Ordinal))
            return index.TryGet(candidate, out var name, out _) ? name : null;
        if (candidate.StartsWith("@dispvm:uuid:", StringComparison.Ordinal))
            return index.TryGet(candidate[8..], out var name, out _) ? "@dispvm:" + name : null;
        return candidate;
    }

    // ---------------------------------------------------------------- the user's answer

    /// <summary>
    /// The user's answer to <paramref name="asked"/>: null = deny; a target not offered = deny; an offered one = the
    /// allow to it, resolved as an allow (<c>@dispvm</c> through the caller's default_dispvm, dom0 aliases to dom0).
    /// A decision that is not an ask is returned unchanged.
    /// </summary>
    public PolicyDecision Answer(PolicyDecision asked, PolicyRequest request, SystemInfo system, string? allowTarget)
    {
        if (asked.Result != PolicyResult.Ask)
            return asked;
        var location = asked.Matched ?? new PolicyLocation("<unknown>", 0);
        if (allowTarget is null)
            return PolicyDecisions.Deny($"denied by the user {location}", asked.Notify, location, asked.RequestedTarget);
        if (!asked.TargetsForAsk.Contains(allowTarget, StringComparer.Ordinal))
            return PolicyDecisions.Deny($"target {allowTarget} is not a valid choice", notify: true, location,
                asked.RequestedTarget);
        try
        {
            return ResolveAllow(allowTarget, location, asked.User, asked.Notify, asked.Autostart, request.Source,
                SystemIndex.Of(system), asked.RequestedTarget);
        }
        catch (Exception e)
        {
            return PolicyDecisions.Deny($"internal policy error: {e.Message}", notify: false, location, asked.RequestedTarget);
        }
    }

    // ---------------------------------------------------------------- matching

    /// <summary>One request with what every rule check needs looked up once.</summary>
    private sealed class Call
    {
        public PolicyRequest Request { get; }
        public PolicyToken Target { get; }
        public SystemIndex Index { get; }
        private readonly SystemDomain? sourceDomain;
        private readonly bool sourceIsDom0;
        private readonly SystemDomain? targetDomain;

        public Call(PolicyRequest request, PolicyToken target, SystemIndex index)
        {
            Request = request;
            Target = target;
            Index = index;
            sourceDomain = index.Get(request.Source);
            sourceIsDom0 = PolicyToken.IsDom0Alias(request.Source);
            targetDomain = target.Kind == PolicyTokenKind.Name ? index.Get(target.Text) : null;
        }

        public bool MatchesButTarget(PolicyRule rule) =>
            (rule.AnyService || rule.Service == Request.Service)
            && (rule.AnyArgument || rule.Argument == Request.Argument)
            && MatchesSource(rule.Source);

        private bool MatchesSource(PolicyToken token) => token.Kind switch
        {
            PolicyTokenKind.Wildcard => true,
            PolicyTokenKind.AnyVm => !sourceIsDom0,
            PolicyTokenKind.AdminVm => sourceIsDom0,
            PolicyTokenKind.Name => token.IsDom0 ? sourceIsDom0 : MatchNames(token.Text, Request.Source),
            PolicyTokenKind.Type => sourceDomain is not null && sourceDomain.Type == token.Value,
            PolicyTokenKind.Tag => sourceDomain is not null && sourceDomain.Tags.Contains(token.Value),
            // A running disposable is never "@dispvm:…" (gotcha 4); @default/@dispvm are not source tokens.
            _ => false,
        };

        public bool MatchesTarget(PolicyToken token)
        {
            var requested = Target.Text;
            switch (token.Kind)
            {
                case PolicyTokenKind.Wildcard:
                    return true;
                case PolicyTokenKind.AnyVm:
                    return !PolicyToken.IsDom0Alias(requested);
                case PolicyTokenKind.AdminVm:
                    return PolicyToken.IsDom0Alias(requested);
                case PolicyTokenKind.Name:
                    return token.IsDom0 ? PolicyToken.IsDom0Alias(requested) : MatchNames(token.Text, requested);
                case PolicyTokenKind.Default:
                    return requested == "@default";
                case PolicyTokenKind.DispVm:
                    return requested == "@dispvm";
                case PolicyTokenKind.Type:
                    return targetDomain is not null && targetDomain.Type == token.Value;
                case PolicyTokenKind.Tag:
                    return targetDomain is not null && targetDomain.Tags.Contains(token.Value);
                case PolicyTokenKind.DispVmTemplate:
                    if (Target.Kind == PolicyTokenKind.DispVm)
                        // Compared as text, as upstream does; no default_dispvm = no match (gotcha 11, fixed).
                        return Index.DispVmTemplateOf(Request.Source) is { } resolved && resolved == token.Text;
                    return Target.Kind == PolicyTokenKind.DispVmTemplate && MatchNames(token.Value, Target.Value);
                case PolicyTokenKind.DispVmTag:
                    var template = Target.Kind switch
                    {
                        PolicyTokenKind.DispVm => Index.Get(Request.Source)?.DefaultDispVm,
                        PolicyTokenKind.DispVmTemplate => Target.Value,
                        _ => null,
                    };
                    return template is not null && Index.Get(template) is { TemplateForDispVms: true } domain
                           && domain.Tags.Contains(token.Value);
                default:
                    return false;
            }
        }

        /// <summary>Name or uuid against name or uuid (upstream match_strings).</summary>
        private bool MatchNames(string mine, string other)
        {
            var mineIsUuid = mine.StartsWith("uuid:", StringComparison.Ordinal);
            var otherIsUuid = other.StartsWith("uuid:", StringComparison.Ordinal);
            if (mineIsUuid && otherIsUuid) return mine == other;
            if (mineIsUuid) return Index.UuidOf(other) is { } u && mine.AsSpan(5).SequenceEqual(u);
            if (otherIsUuid) return Index.UuidOf(mine) is { } u && other.AsSpan(5).SequenceEqual(u);
            return mine == other;
        }
    }
}
