using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Policy;

namespace QubesActors.Core.Tests.Policy;

/// <summary>Random policy texts and requests: Parse only ever throws syntax errors, Evaluate/Answer never throw.</summary>
public sealed class PolicyPropertyTests
{
    [Property(Arbitrary = [typeof(PolicyGenerators)], MaxTest = 300)]
    public bool Evaluate_never_throws(PolicyCase c)
    {
        CompiledPolicy policy;
        try
        {
            policy = CompiledPolicy.Parse("p.policy", c.Text, p => p == "inc" ? c.Text : null);
        }
        catch (PolicySyntaxException)
        {
            return true;
        }
        foreach (var request in c.Requests)
        {
            // EvaluateCore has no safety net: an exception fails the property.
            var d = policy.EvaluateCore(request, c.System);
            if (d.Result == PolicyResult.Ask)
            {
                if (d.TargetsForAsk.IsEmpty) return false;
                foreach (var pick in d.TargetsForAsk.Append("nonsense"))
                    policy.Answer(d, request, c.System, pick);
                policy.Answer(d, request, c.System, null);
            }
            if (d.Result == PolicyResult.Allow && d.Target is null) return false;
            if (d.Result == PolicyResult.Deny && string.IsNullOrEmpty(d.Reason)) return false;
            _ = PolicyDecisions.LogLine(request, d);
        }
        return true;
    }

    [Property(Arbitrary = [typeof(PolicyGenerators)], MaxTest = 300)]
    public bool Parse_throws_only_syntax_errors(NoiseText text)
    {
        try
        {
            CompiledPolicy.Parse("p.policy", text.Text, _ => text.Text);
        }
        catch (PolicySyntaxException)
        {
        }
        return true;
    }

    [Property(Arbitrary = [typeof(PolicyGenerators)], MaxTest = 200)]
    public bool Indexed_evaluation_equals_a_linear_scan(PolicyCase c)
    {
        CompiledPolicy policy;
        try
        {
            policy = CompiledPolicy.Parse("p.policy", c.Text);
        }
        catch (PolicySyntaxException)
        {
            return true;
        }
        foreach (var request in c.Requests)
        {
            // The same rules one per "*"-free bucket-less policy: each rule alone, first allow/deny/ask that matches wins.
            var indexed = policy.Evaluate(request, c.System);
            PolicyLocation? linear = null;
            foreach (var rule in policy.Rules)
            {
                var single = new CompiledPolicy([rule]).Evaluate(request, c.System);
                if (single.Matched is not null || single.Result == PolicyResult.ParseError
                    || single.Reason?.StartsWith("not a template", StringComparison.Ordinal) == true)
                {
                    linear = single.Matched;
                    break;
                }
            }
            if (indexed.Result == PolicyResult.Ask || linear is null)
                continue; // ask collects over all rules; the single-rule policy cannot reproduce it
            if (indexed.Matched != linear) return false;
        }
        return true;
    }
}

public sealed record PolicyCase(string Text, SystemInfo System, IReadOnlyList<PolicyRequest> Requests)
{
    public override string ToString() => Text + "\n-- requests: " + string.Join("; ", Requests);
}

public sealed record NoiseText(string Text)
{
    public override string ToString() => Text;
}

public static class PolicyGenerators
{
    private static readonly string[] Names = ["dom0", "work", "personal", "dvm", "dvm2", "sys-net", "ghost", "internal-q"];
    private static readonly string[] Tags = ["t1", "t2", "created-by-work"];
    private static readonly string[] Types = ["AppVM", "AdminVM", "TemplateVM", "DispVM", "StandaloneVM"];
    private static readonly string[] Services = ["s.A", "s.B", "*"];

    private static Guid UuidOf(string name) => name == "dom0" ? Guid.Empty : new Guid(name.PadRight(16, 'x')[..16].Select(c => (byte)c).ToArray());

    // Mostly valid tokens (so that many random policies parse), a few invalid ones.
    private static Gen<string> TokenGen =>
        Gen.Frequency(
            (4, Gen.Elements(Names)),
            (2, Gen.Elements(Names).Select(n => "uuid:" + UuidOf(n).ToString("D"))),
            (4, Gen.Elements("@anyvm", "*", "@adminvm", "@default", "@dispvm", "uuid:00000000-0000-0000-0000-000000000000")),
            (1, Gen.Elements("@invalid", "@tag:", "@dispvm:", "", "@uuid:x", "@dispvm:@tag:")),
            (2, Gen.Elements(Tags).Select(t => "@tag:" + t)),
            (2, Gen.Elements(Types).Select(t => "@type:" + t)),
            (2, Gen.Elements(Names).Select(n => "@dispvm:" + n)),
            (1, Gen.Elements(Names).Select(n => "@dispvm:uuid:" + UuidOf(n).ToString("D"))),
            (1, Gen.Elements(Tags).Select(t => "@dispvm:@tag:" + t)));

    private static Gen<string> ParamGen =>
        Gen.OneOf(
            TokenGen.Select(t => "target=" + t),
            TokenGen.Select(t => "default_target=" + t),
            Gen.Elements("notify=yes", "notify=no", "autostart=yes", "autostart=no", "user=root", "notify=maybe", "bare", "x=y"));

    private static Gen<string> LineGen =>
        Gen.Frequency(
            (10, from service in Gen.Elements(Services)
                 from argument in Gen.Elements("*", "+", "+x")
                 from source in TokenGen
                 from target in TokenGen
                 from action in Gen.Elements("allow", "deny", "ask")
                 from parameters in Gen.ListOf(ParamGen).Select(p => p.Take(3))
                 select string.Join(' ', new[] { service, argument, source, target, action }.Concat(parameters))),
            (1, Gen.Elements("# comment", "", "!include-service s.A * inc")),
            (1, Gen.Elements("!include inc", "!bogus", "s.A * @anyvm")));

    public static Gen<SystemInfo> SystemGen =>
        from qubes in Gen.Elements(Names.Where(n => n != "ghost").ToArray()).ListOf()
        from domains in Gen.CollectToArray(qubes.Distinct().Append("dom0").Distinct().Select(name =>
            from type in name == "dom0" ? Gen.Constant("AdminVM") : Gen.Elements(Types)
            from tags in Gen.SubListOf(Tags)
            from template in Gen.Elements(true, false)
            from defaultDispVm in Gen.Elements<string?>(null, "dvm", "dvm2", "ghost", "work")
            from running in Gen.Elements("Running", "Halted")
            from hasUuid in Gen.Frequency((5, Gen.Constant(true)), (1, Gen.Constant(false)))
            select (name, new SystemDomain(type, [.. tags], template, defaultDispVm, running, hasUuid ? UuidOf(name) : null,
                Internal: name == "internal-q"))))
        select new SystemInfo(domains.ToImmutableSortedDictionary(d => d.name, d => d.Item2, StringComparer.Ordinal));

    private static Gen<PolicyRequest> RequestGen =>
        from service in Gen.Elements("s.A", "s.B", "s.C")
        from argument in Gen.Elements("+", "+x", "+y")
        from source in Gen.OneOf(Gen.Elements(Names), Gen.Elements(Names).Select(n => "uuid:" + UuidOf(n).ToString("D")))
        from target in Gen.OneOf(TokenGen, Gen.Elements("work ", "@dispvm:@tag:t1"))
        select new PolicyRequest(service, argument, source, target);

    public static Arbitrary<PolicyCase> Cases() =>
        (from lines in Gen.ListOf(LineGen).Select(l => l.Take(12))
         from system in SystemGen
         from requests in Gen.ListOf(RequestGen).Select(r => r.Take(8).ToList())
         select new PolicyCase(string.Join('\n', lines), system, requests)).ToArbitrary();

    public static Arbitrary<NoiseText> Noise() =>
        Gen.OneOf(
                ArbMap.Default.GeneratorFor<string>().Select(s => s ?? ""),
                Gen.ListOf(Gen.Elements("s", "*", "+", "+a", "@anyvm", "@tag:", "allow", "deny", "ask", "target=", "=", ",", "$",
                    "!include", "!include-service", "\t", "\n", "\r", "#", " ", "x=y", "@dispvm:", "\u001c", "\u00a0", "'", "\"", "\\"))
                    .Select(string.Concat))
            .Select(t => new NoiseText(t)).ToArbitrary();
}
