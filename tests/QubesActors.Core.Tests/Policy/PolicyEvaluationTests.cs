using QubesActors.Core.Policy;
using Xunit;
using static QubesActors.Core.Tests.Policy.PolicyTestSystem;

namespace QubesActors.Core.Tests.Policy;

/// <summary>§4 normalisation, §5 matching, §6 allow/deny, §7 reasons, §9 gotchas by number.</summary>
public sealed class PolicyEvaluationTests
{
    private static bool Matches(string source, string target, string sourceToken, string targetToken) =>
        Eval($"test.Service * {sourceToken} {targetToken} deny\ntest.Service * * * allow target=test-vm1",
            source, target).Reason == "denied by policy test.policy:1";

    // ---- §4 normalisation

    [Theory]
    [InlineData("", "@default")]
    [InlineData("test-vm2", "test-vm2")]
    [InlineData("no-such-vm", "@default")]
    [InlineData("test-vm2 ", "@default")]
    [InlineData("test-vm2\n", "@default")]
    [InlineData("@adminvm", "@adminvm")]
    [InlineData("dom0", "dom0")]
    [InlineData("@default", "@default")]
    [InlineData("@dispvm", "@dispvm")]
    [InlineData("@dispvm:default-dvm", "@dispvm:default-dvm")]
    [InlineData("uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", "uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4")]
    [InlineData("uuid:00000000-0000-0000-0000-000000000000", "uuid:00000000-0000-0000-0000-000000000000")]
    [InlineData("uuid:11111111-1111-1111-1111-111111111111", "@default")]
    public void Requested_target_is_normalised(string requested, string normalised) =>
        Assert.Equal(normalised, Eval("test.Service * @anyvm * deny", "test-vm1", requested).RequestedTarget);

    [Theory]
    [InlineData("@dispvm:test-vm1")]
    [InlineData("@dispvm:no-such-vm")]
    public void Dispvm_of_a_non_template_is_denied(string requested)
    {
        var d = Eval("test.Service * @anyvm * allow", "test-vm1", requested);
        Assert.Equal(PolicyResult.Deny, d.Result);
        Assert.Equal($"not a template for dispvm: {requested[8..]}", d.Reason);
        Assert.True(d.Notify);
        Assert.Null(d.Matched);
    }

    [Theory]
    [InlineData("@anyvm")]
    [InlineData("*")]
    [InlineData("@tag:tag1")]
    [InlineData("@type:AppVM")]
    [InlineData("@dispvm:@tag:tag1")]
    [InlineData("@invalid")]
    public void Keywords_not_valid_as_request_are_errors(string requested)
    {
        var d = Eval("test.Service * * * allow", "test-vm1", requested);
        Assert.Equal(PolicyResult.ParseError, d.Result);
        Assert.Equal($"<unknown>:0: invalid intendedtarget token: '{requested}'", d.Reason);
        Assert.False(d.Notify);
        Assert.Equal(requested, d.RequestedTarget);
    }

    [Fact]
    public void Empty_dispvm_request_is_an_error() =>
        Assert.Equal("<unknown>:0: invalid empty @dispvm: token: '@dispvm:'",
            Eval("test.Service * * * allow", "test-vm1", "@dispvm:").Reason);

    [Fact]
    public void Unknown_source_still_matches_anyvm() =>
        Assert.Equal(PolicyResult.Allow, Eval("test.Service * @anyvm @anyvm allow", "ghost", "test-vm2").Result);

    // ---- §5 matching: service and argument

    [Theory]
    [InlineData("test.Service", "+", true)]
    [InlineData("test.Service", "+arg", false)]
    [InlineData("test.Servic", "+", false)]
    [InlineData("test.Service2", "+", false)]
    public void Service_matches_exactly(string service, string argument, bool matches) =>
        Assert.Equal(matches, Eval("test.Service + @anyvm @anyvm allow", "test-vm1", "test-vm2", service, argument).Result
                              == PolicyResult.Allow);

    [Theory]
    [InlineData("+", "+", true)]
    [InlineData("+", "+x", false)]
    [InlineData("+x", "+", false)]
    [InlineData("+x", "+x", true)]
    [InlineData("*", "+", true)]
    [InlineData("*", "+anything", true)]
    public void Argument_matches(string ruleArgument, string requestArgument, bool matches) =>
        Assert.Equal(matches, Eval($"test.Service {ruleArgument} @anyvm @anyvm allow", "test-vm1", "test-vm2",
            argument: requestArgument).Result == PolicyResult.Allow);

    [Fact]
    public void Request_without_argument_splits_at_the_first_plus()
    {
        Assert.Equal(new PolicyRequest("qubes.Filecopy", "+", "a", ""), PolicyRequest.Of("qubes.Filecopy", "a", ""));
        Assert.Equal(new PolicyRequest("s", "+a+b", "a", ""), PolicyRequest.Of("s+a+b", "a", ""));
    }

    [Fact]
    public void Any_service_rules_are_merged_in_order()
    {
        var policy = Load("""
            other.Service * @anyvm @anyvm allow
            * * @anyvm test-vm2 deny
            test.Service * @anyvm @anyvm allow
            * * @anyvm @anyvm ask
            """);
        var system = Default;
        Assert.Equal("denied by policy test.policy:2",
            policy.Evaluate(new("test.Service", "+", "test-vm1", "test-vm2"), system).Reason);
        Assert.Equal(PolicyResult.Allow, policy.Evaluate(new("test.Service", "+", "test-vm1", "test-vm3"), system).Result);
        Assert.Equal(PolicyResult.Ask, policy.Evaluate(new("unknown.Service", "+", "test-vm1", "test-vm3"), system).Result);
        Assert.Equal(PolicyResult.Allow, policy.Evaluate(new("other.Service", "+", "test-vm1", "test-vm2"), system).Result);
    }

    // ---- §5 matching: source column

    [Theory]
    [InlineData("test-vm1", "test-vm1", true)]
    [InlineData("test-vm1", "test-vm2", false)]
    [InlineData("test-vm1", "uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", true)]
    [InlineData("test-vm1", "uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", false)]
    [InlineData("test-vm1", "@anyvm", true)]
    [InlineData("test-vm1", "*", true)]
    [InlineData("test-vm1", "@adminvm", false)]
    [InlineData("test-vm1", "dom0", false)]
    [InlineData("test-vm1", "@type:AppVM", true)]
    [InlineData("test-vm1", "@type:TemplateVM", false)]
    [InlineData("test-vm1", "@tag:tag1", true)]
    [InlineData("test-vm1", "@tag:tag3", false)]
    [InlineData("test-vm1", "@dispvm:default-dvm", false)]
    [InlineData("test-vm1", "@dispvm:@tag:tag1", false)]
    [InlineData("dom0", "@anyvm", false)]
    [InlineData("dom0", "*", true)]
    [InlineData("dom0", "@adminvm", true)]
    [InlineData("dom0", "dom0", true)]
    [InlineData("dom0", "uuid:00000000-0000-0000-0000-000000000000", true)]
    [InlineData("dom0", "@type:AdminVM", true)]
    [InlineData("dom0", "@tag:dom0-tag", true)]
    [InlineData("ghost", "@type:AppVM", false)]
    public void Source_column(string source, string token, bool matches) =>
        Assert.Equal(matches, Matches(source, "test-vm3", token, "*"));

    // ---- §5 matching: target column

    [Theory]
    [InlineData("*", "dom0", true)]
    [InlineData("*", "@adminvm", true)]
    [InlineData("*", "@default", true)]
    [InlineData("@anyvm", "test-vm2", true)]
    [InlineData("@anyvm", "@default", true)]
    [InlineData("@anyvm", "@dispvm", true)]
    [InlineData("@anyvm", "@dispvm:default-dvm", true)]
    [InlineData("@anyvm", "dom0", false)]
    [InlineData("@anyvm", "@adminvm", false)]
    [InlineData("@anyvm", "uuid:00000000-0000-0000-0000-000000000000", false)]
    [InlineData("@default", "@default", true)]
    [InlineData("@default", "", true)]
    [InlineData("@default", "test-vm2", false)]
    [InlineData("@adminvm", "dom0", true)]
    [InlineData("@adminvm", "@adminvm", true)]
    [InlineData("@adminvm", "uuid:00000000-0000-0000-0000-000000000000", true)]
    [InlineData("@adminvm", "test-vm2", false)]
    [InlineData("dom0", "@adminvm", true)]
    [InlineData("dom0", "uuid:00000000-0000-0000-0000-000000000000", true)]
    [InlineData("uuid:00000000-0000-0000-0000-000000000000", "@adminvm", true)]
    [InlineData("uuid:00000000-0000-0000-0000-000000000000", "dom0", true)]
    [InlineData("dom0", "@default", false)]
    [InlineData("test-vm2", "test-vm2", true)]
    [InlineData("test-vm2", "uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", true)]
    [InlineData("uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", "test-vm2", true)]
    [InlineData("uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", "uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", true)]
    [InlineData("uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", "test-vm3", false)]
    [InlineData("test-vm2", "test-vm3", false)]
    [InlineData("no-such-vm", "no-such-vm", false)]
    [InlineData("@type:AppVM", "test-vm2", true)]
    [InlineData("@type:AppVM", "uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", true)]
    [InlineData("@type:AppVM", "@default", false)]
    [InlineData("@type:AppVM", "@dispvm", false)]
    [InlineData("@type:TemplateVM", "test-template", true)]
    [InlineData("@tag:tag2", "test-vm2", true)]
    [InlineData("@tag:tag2", "test-vm3", false)]
    [InlineData("@dispvm", "@dispvm", true)]
    [InlineData("@dispvm", "@dispvm:default-dvm", false)]
    [InlineData("@dispvm", "default-dvm", false)]
    [InlineData("@dispvm:default-dvm", "@dispvm:default-dvm", true)]
    [InlineData("@dispvm:default-dvm", "@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21", true)]
    [InlineData("@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21", "@dispvm:default-dvm", true)]
    [InlineData("@dispvm:default-dvm", "@dispvm", true)]
    [InlineData("@dispvm:default-dvm", "default-dvm", false)]
    [InlineData("@dispvm:default-dvm", "@dispvm:test-vm3", false)]
    [InlineData("@dispvm:test-vm3", "@dispvm", false)]
    [InlineData("@dispvm:@tag:tag3", "@dispvm:test-vm3", true)]
    [InlineData("@dispvm:@tag:tag3", "@dispvm:default-dvm", false)]
    [InlineData("@dispvm:@tag:tag3", "test-vm3", false)]
    [InlineData("@dispvm:@tag:tag3", "@dispvm", false)]
    [InlineData("default-dvm", "@dispvm:default-dvm", false)]
    public void Target_column(string token, string requested, bool matches) =>
        Assert.Equal(matches, Matches("test-vm1", requested, "@anyvm", token));

    [Fact]
    public void Dispvm_tag_matches_plain_dispvm_through_the_default_dispvm()
    {
        // test-invalid-dvm's default_dispvm is test-vm1 (not a disposable template): no match.
        Assert.False(Matches("test-invalid-dvm", "@dispvm", "@anyvm", "@dispvm:@tag:tag1"));
        var system = Default with { Domains = Default.Domains.SetItem("test-vm1", Default.Domains["test-vm1"] with { DefaultDispVm = "test-vm3" }) };
        var d = Eval("test.Service * @anyvm @dispvm:@tag:tag3 deny\ntest.Service * * * allow target=test-vm2", "test-vm1",
            "@dispvm", system: system);
        Assert.Equal("denied by policy test.policy:1", d.Reason);
    }

    [Fact]
    public void Dispvm_uuid_rule_against_plain_dispvm_compares_text_as_upstream() =>
        Assert.False(Matches("test-vm1", "@dispvm", "@anyvm", "@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21"));

    // ---- §9 gotchas

    [Fact]
    public void Gotcha1_anyvm_never_dom0_but_default_star_matches_dom0()
    {
        Assert.False(Matches("test-vm1", "dom0", "@anyvm", "@anyvm"));
        Assert.True(Matches("test-vm1", "@default", "@anyvm", "@anyvm"));
        Assert.True(Matches("test-vm1", "dom0", "@anyvm", "*"));
        Assert.False(Matches("dom0", "test-vm2", "@anyvm", "*"));
        Assert.True(Matches("dom0", "test-vm2", "*", "*"));
    }

    [Fact]
    public void Gotcha2_tag_and_type_match_dom0_by_name_not_adminvm()
    {
        Assert.True(Matches("test-vm1", "dom0", "@anyvm", "@tag:dom0-tag"));
        Assert.True(Matches("test-vm1", "dom0", "@anyvm", "@type:AdminVM"));
        Assert.False(Matches("test-vm1", "@adminvm", "@anyvm", "@tag:dom0-tag"));
        Assert.False(Matches("test-vm1", "@adminvm", "@anyvm", "@type:AdminVM"));
    }

    [Fact]
    public void Gotcha3_unknown_target_becomes_default()
    {
        var d = Eval("test.Service * @anyvm @default ask\ntest.Service * @anyvm test-vm2 allow", "test-vm1", "no-such-vm");
        Assert.Equal(PolicyResult.Ask, d.Result);
        Assert.Equal("@default", d.RequestedTarget);
        var allow = Eval("test.Service * @anyvm @anyvm allow", "test-vm1", "no-such-vm");
        Assert.Equal("policy define 'allow' action at test.policy:1 but no target is specified by caller or policy", allow.Reason);
    }

    [Fact]
    public void Gotcha4_dispvm_source_never_matches()
    {
        Assert.False(Matches("default-dvm", "test-vm2", "@dispvm:default-dvm", "*"));
        Assert.False(Matches("test-vm3", "test-vm2", "@dispvm:@tag:tag3", "*"));
    }

    [Fact]
    public void Gotcha5_redirect_skips_reevaluation()
    {
        var d = Eval("""
            test.Service * @anyvm test-vm2 allow target=test-vm3
            test.Service * @anyvm test-vm3 deny
            """, "test-vm1", "test-vm2");
        Assert.Equal(PolicyResult.Allow, d.Result);
        Assert.Equal("test-vm3", d.Target);
        Assert.Equal("test-vm2", d.RequestedTarget);
    }

    [Fact]
    public void Gotcha6_ask_target_dispvm_is_literal_allow_and_default_target_resolve()
    {
        var ask = Eval("test.Service * @anyvm @anyvm ask target=@dispvm", "test-vm1", "test-vm2");
        Assert.Equal("@dispvm", string.Join(",", ask.TargetsForAsk));
        var allow = Eval("test.Service * @anyvm @anyvm allow target=@dispvm", "test-vm1", "test-vm2");
        Assert.Equal("@dispvm:default-dvm", allow.Target);
        var withDefault = Eval("test.Service * @anyvm @anyvm ask default_target=@dispvm", "test-vm1", "test-vm2");
        Assert.Equal("@dispvm:default-dvm", withDefault.DefaultTarget);
    }

    [Fact]
    public void Gotcha7_uuid0_redirect_stays_adminvm_becomes_dom0()
    {
        Assert.Equal(PolicyToken.Dom0Uuid,
            Eval($"test.Service * @anyvm @anyvm allow target={PolicyToken.Dom0Uuid}", "test-vm1", "test-vm2").Target);
        Assert.Equal("dom0", Eval("test.Service * @anyvm @anyvm allow target=@adminvm", "test-vm1", "test-vm2").Target);
        Assert.Equal("dom0", Eval("test.Service * @anyvm @anyvm allow target=dom0", "test-vm1", "test-vm2").Target);
        Assert.Equal("dom0", Eval("test.Service * @anyvm @adminvm allow", "test-vm1", "@adminvm").Target);
        Assert.Equal(PolicyToken.Dom0Uuid, Eval("test.Service * @anyvm @adminvm allow", "test-vm1", PolicyToken.Dom0Uuid).Target);
    }

    [Fact]
    public void Gotcha8_deny_removes_only_the_exact_candidate()
    {
        var d = Eval("""
            test.Service * @anyvm test-vm3 deny
            test.Service * @anyvm @anyvm ask
            """, "test-vm1", "test-vm2");
        Assert.DoesNotContain("test-vm3", d.TargetsForAsk);
        Assert.Contains("@dispvm:test-vm3", d.TargetsForAsk);
    }

    [Fact]
    public void Gotcha9_autostart_refusal_notifies_only_when_asked()
    {
        var quiet = Eval("test.Service * @anyvm @anyvm allow autostart=no", "test-vm1", "test-vm2");
        Assert.Equal("target test-vm2 is denied because it would require autostart", quiet.Reason);
        Assert.False(quiet.Notify);
        Assert.True(Eval("test.Service * @anyvm @anyvm allow autostart=no notify=yes", "test-vm1", "test-vm2").Notify);
    }

    [Fact]
    public void Gotcha10_commas_only_in_include_service()
    {
        Assert.Equal("invalid action: allow,target=dom0",
            SyntaxError("test.Service * @anyvm @anyvm allow,target=dom0").Detail);
        var policy = CompiledPolicy.Parse("test.policy", "!include-service test.Service * old",
            path => path == "old" ? "$anyvm $anyvm allow,target=dom0" : null);
        Assert.Equal("dom0", Assert.Single(policy.Rules).Redirect!.Text);
    }

    [Fact]
    public void Gotcha11_dispvm_template_rule_without_default_dispvm_does_not_match()
    {
        var d = Eval("""
            test.Service * @anyvm @dispvm:default-dvm deny
            test.Service * @anyvm @dispvm allow
            """, "test-no-dvm", "@dispvm");
        Assert.Equal("policy define 'allow' action to @dispvm at test.policy:2 but no DispVM base is set for this VM", d.Reason);
    }

    // ---- §6 allow resolution

    [Theory]
    [InlineData("test-vm2", "test-vm2")]
    [InlineData("uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4", "uuid:b3eb69d0-f9d9-4c3c-ad5c-454500303ea4")]
    [InlineData("@dispvm", "@dispvm:default-dvm")]
    [InlineData("@dispvm:test-vm3", "@dispvm:test-vm3")]
    [InlineData("@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21", "@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21")]
    [InlineData("@adminvm", "dom0")]
    [InlineData("dom0", "dom0")]
    public void Allow_resolves_the_requested_target(string requested, string resolved) =>
        Assert.Equal(resolved, Eval("test.Service * @anyvm * allow", "test-vm1", requested).Target);

    [Fact]
    public void Allow_without_any_target_is_denied()
    {
        var d = Eval("test.Service * @anyvm @anyvm allow", "test-vm1", "");
        Assert.Equal(PolicyResult.Deny, d.Result);
        Assert.Equal("policy define 'allow' action at test.policy:1 but no target is specified by caller or policy", d.Reason);
        Assert.True(d.Notify);
    }

    [Fact]
    public void Redirect_to_a_missing_qube_is_denied() =>
        Assert.Equal("policy define 'allow' action at test.policy:1 but no target is specified by caller or policy",
            Eval("test.Service * @anyvm @anyvm allow target=ghost", "test-vm1", "test-vm2").Reason);

    [Fact]
    public void Redirect_to_a_non_template_dispvm_is_denied() =>
        Assert.Equal("not a template for dispvm: test-vm1",
            Eval("test.Service * @anyvm @anyvm allow target=@dispvm:test-vm1", "test-vm2", "test-vm3").Reason);

    [Fact]
    public void Allow_dispvm_without_default_dispvm_is_denied() =>
        Assert.Equal("policy define 'allow' action to @dispvm at test.policy:1 but no DispVM base is set for this VM",
            Eval("test.Service * @anyvm @dispvm allow", "test-no-dvm", "@dispvm").Reason);

    [Fact]
    public void Allow_parameters_are_carried()
    {
        var d = Eval("test.Service * @anyvm @anyvm allow user=root notify=yes", "test-vm1", "test-vm2");
        Assert.Equal("root", d.User);
        Assert.True(d.Notify);
        Assert.Null(d.Reason);
    }

    [Theory]
    [InlineData("test-vm2", "test-vm1", null)] // running
    [InlineData("test-vm2", "test-vm3", "target test-vm3 is denied because it would require autostart")]
    [InlineData("test-vm2", "dom0", null)]
    [InlineData("test-vm2", "@adminvm", null)]
    [InlineData("test-vm2", "@dispvm", "target @dispvm:default-dvm is denied because it would require autostart")]
    [InlineData("test-vm2", "@dispvm:test-vm3", "target @dispvm:test-vm3 is denied because it would require autostart")]
    [InlineData("test-vm2", "uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", null)]
    public void Autostart_no_allows_only_running_or_dom0(string source, string target, string? reason)
    {
        var d = Eval("test.Service * @anyvm * allow autostart=no", source, target);
        Assert.Equal(reason, d.Reason);
        Assert.Equal(reason is null ? PolicyResult.Allow : PolicyResult.Deny, d.Result);
        if (reason is null) Assert.False(d.Autostart);
    }

    [Fact]
    public void Shipped_get_date_policy()
    {
        const string policy = """
            qubes.GetDate * @tag:anon-vm @anyvm deny
            qubes.GetDate * @anyvm @anyvm allow target=dom0
            """;
        var d = Eval(policy, "test-vm1", "", "qubes.GetDate");
        Assert.Equal("dom0", d.Target);
        Assert.Equal("@default", d.RequestedTarget);
    }

    [Fact]
    public void Evaluate_with_empty_policy_denies() =>
        Assert.Equal("no matching rule found",
            CompiledPolicy.Empty.Evaluate(new("s", "+", "test-vm1", "test-vm2"), Default).Reason);
}
