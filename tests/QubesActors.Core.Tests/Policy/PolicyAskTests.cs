using QubesActors.Core.Policy;
using Xunit;
using static QubesActors.Core.Tests.Policy.PolicyTestSystem;

namespace QubesActors.Core.Tests.Policy;

/// <summary>§6 ask: the candidate list, default_target, the user's answer; §7 log lines.</summary>
public sealed class PolicyAskTests
{
    private static string Targets(PolicyDecision d) => string.Join(",", d.TargetsForAsk);

    private static string Ask(string policy, string source = "test-vm1", string target = "test-vm2") =>
        Targets(Eval(policy, source, target));

    private const string AllQubesButSelfAndDom0 =
        "@dispvm:default-dvm,@dispvm:test-vm3,default-dvm,test-invalid-dvm,test-no-dvm,test-standalone,test-template,test-vm2,test-vm3";

    [Fact]
    public void Anyvm_expands_to_every_qube_but_dom0_caller_and_internal() =>
        Assert.Equal(AllQubesButSelfAndDom0, Ask("test.Service * @anyvm @anyvm ask"));

    [Fact]
    public void Ask_lists_are_remembered_per_system_info_only()
    {
        var policy = Load("test.Service * @anyvm @anyvm ask");
        var request = new PolicyRequest("test.Service", "+", "test-vm1", "test-vm2");
        var first = policy.Evaluate(request, Default);
        Assert.Equal(first.TargetsForAsk, policy.Evaluate(request, Default).TargetsForAsk);
        // Another system info (a qube gone): a list of its own, not the remembered one.
        var smaller = Default with { Domains = Default.Domains.Remove("test-vm3") };
        var after = policy.Evaluate(request, smaller);
        Assert.Contains("test-vm3", first.TargetsForAsk);
        Assert.DoesNotContain("test-vm3", after.TargetsForAsk);
        Assert.Equal(first.TargetsForAsk.Length - 2, after.TargetsForAsk.Length); // test-vm3 and @dispvm:test-vm3
        // Another caller with the same service: its own list (the caller is never offered).
        Assert.Contains("test-vm1", policy.Evaluate(request with { Source = "test-vm2" }, Default).TargetsForAsk);
    }

    [Fact]
    public void Star_adds_dom0() =>
        Assert.Equal("@dispvm:default-dvm,@dispvm:test-vm3,default-dvm,dom0,test-invalid-dvm,test-no-dvm,test-standalone,test-template,test-vm2,test-vm3",
            Ask("test.Service * @anyvm * ask"));

    [Fact]
    public void Other_rules_supply_candidates_bottom_up()
    {
        Assert.Equal("test-vm2,test-vm3", Ask("""
            test.Service * @anyvm @default ask
            test.Service * @anyvm test-vm2 allow
            test.Service * @anyvm test-vm3 ask
            test.Service * @anyvm dom0 deny
            other.Service * @anyvm default-dvm allow
            test.Service +other @anyvm default-dvm allow
            test.Service * test-vm2 test-template allow
            """, target: ""));
    }

    [Fact]
    public void A_higher_deny_removes_a_lower_allow_and_a_higher_allow_restores()
    {
        Assert.Equal("test-vm3", Ask("""
            test.Service * @anyvm test-vm2 deny
            test.Service * @anyvm @default ask
            test.Service * @anyvm test-vm2 allow
            test.Service * @anyvm test-vm3 allow
            """, target: ""));
        Assert.Equal("test-vm2,test-vm3", Ask("""
            test.Service * @anyvm @default ask
            test.Service * @anyvm test-vm2 allow
            test.Service * @anyvm test-vm2 deny
            test.Service * @anyvm test-vm3 allow
            """, target: ""));
    }

    [Fact]
    public void Lone_default_ask_denies()
    {
        var d = Eval("test.Service * @anyvm @default ask", "test-vm1", "");
        Assert.Equal(PolicyResult.Deny, d.Result);
        Assert.Equal("policy define 'ask' action at test.policy:1 but no target is available to choose from", d.Reason);
        Assert.True(d.Notify);
    }

    [Fact]
    public void Redirect_targets_also_count() =>
        Assert.Equal("test-vm3", Ask("""
            test.Service * @anyvm @default ask
            test.Service * @anyvm test-vm2 allow target=test-vm3
            """, target: ""));

    [Fact]
    public void Type_tag_and_dispvm_expansions()
    {
        Assert.Equal("test-template", Ask("test.Service * @anyvm @type:TemplateVM ask", target: "test-template"));
        Assert.Equal("dom0", Ask("test.Service * @anyvm @tag:dom0-tag ask", target: "dom0"));
        // tag1: test-vm1 (caller, removed), test-invalid-dvm, test-template, sys-internal (internal, removed)
        Assert.Equal("test-invalid-dvm,test-template", Ask("test.Service * @anyvm @tag:tag1 ask", target: "test-template"));
        Assert.Equal("@dispvm:test-vm3", Ask("test.Service * @anyvm @dispvm:@tag:tag3 ask", target: "@dispvm:test-vm3"));
        Assert.Equal("@dispvm:default-dvm", Ask("test.Service * @anyvm @dispvm ask", target: "@dispvm"));
        Assert.Equal("@dispvm:test-vm3", Ask("test.Service * @anyvm @dispvm:test-vm3 ask", target: "@dispvm:test-vm3"));
        Assert.Equal("@dispvm:default-dvm",
            Ask("test.Service * @anyvm @dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21 ask", target: "@dispvm:default-dvm"));
        Assert.Equal("dom0", Ask("test.Service * @anyvm @adminvm ask", target: "@adminvm"));
        Assert.Equal("dom0", Ask($"test.Service * @anyvm {PolicyToken.Dom0Uuid} ask", target: "dom0"));
        Assert.Equal("test-vm2", Ask($"test.Service * @anyvm {U(TestVm2Uuid)} ask"));
    }

    [Fact]
    public void Dispvm_without_default_dispvm_is_dropped()
    {
        var d = Eval("test.Service * @anyvm @dispvm ask", "test-no-dvm", "@dispvm");
        Assert.Equal("policy define 'ask' action at test.policy:1 but no target is available to choose from", d.Reason);
    }

    [Fact]
    public void Internal_qubes_are_never_offered_also_as_dispvm()
    {
        var d = Eval("test.Service * @anyvm @anyvm ask\ntest.Service * @anyvm sys-internal allow", "test-vm1", "test-vm2");
        Assert.DoesNotContain("sys-internal", d.TargetsForAsk);
        Assert.DoesNotContain("@dispvm:sys-internal", d.TargetsForAsk);
        Assert.Equal("policy define 'ask' action at test.policy:1 but no target is available to choose from",
            Eval("test.Service * @anyvm sys-internal ask", "test-vm1", "sys-internal").Reason);
    }

    [Fact]
    public void The_caller_is_removed_also_by_uuid() =>
        Assert.DoesNotContain("test-vm1", Eval($"test.Service * @anyvm {U(TestVm1Uuid)} ask\ntest.Service * @anyvm test-vm2 allow",
            "test-vm1", U(TestVm1Uuid)).TargetsForAsk);

    [Fact]
    public void Ask_with_redirect_offers_exactly_it()
    {
        Assert.Equal("test-vm3", Ask("test.Service * @anyvm @anyvm ask target=test-vm3"));
        Assert.Equal("dom0", Ask("test.Service * @anyvm @anyvm ask target=@adminvm"));
        Assert.Equal("dom0", Ask($"test.Service * @anyvm @anyvm ask target={PolicyToken.Dom0Uuid}"));
        Assert.Equal(U(TestVm3Uuid), Ask($"test.Service * @anyvm @anyvm ask target={U(TestVm3Uuid)}"));
    }

    [Fact]
    public void Autostart_no_keeps_running_and_dom0() =>
        Assert.Equal("dom0,test-vm1", Ask("test.Service * @anyvm * ask autostart=no", source: "test-vm2"));

    [Theory]
    [InlineData("default_target=test-vm3", "test-vm3")]
    [InlineData("default_target=test-vm1", null)] // the caller: not offered
    [InlineData("default_target=ghost", null)]
    [InlineData("default_target=@dispvm", "@dispvm:default-dvm")]
    [InlineData("default_target=@dispvm:test-vm3", "@dispvm:test-vm3")]
    [InlineData("default_target=uuid:fa6d56e8-a89d-4106-aa62-22e172a43c8b", null)] // uuid not converted
    [InlineData("", null)]
    public void Default_target(string parameter, string? expected) =>
        Assert.Equal(expected, Eval($"test.Service * @anyvm @anyvm ask {parameter}", "test-vm1", "test-vm3").DefaultTarget);

    [Fact]
    public void Default_target_dom0_aliases()
    {
        Assert.Equal("dom0", Eval("test.Service * @anyvm * ask default_target=@adminvm", "test-vm1", "dom0").DefaultTarget);
        Assert.Equal("dom0", Eval($"test.Service * @anyvm * ask default_target={PolicyToken.Dom0Uuid}", "test-vm1", "dom0").DefaultTarget);
    }

    [Fact]
    public void Ask_carries_rule_parameters()
    {
        var d = Eval("test.Service * @anyvm @anyvm ask user=u notify=yes", "test-vm1", "test-vm2");
        Assert.Equal("u", d.User);
        Assert.True(d.Notify);
        Assert.True(d.Autostart);
        Assert.Equal(new PolicyLocation("test.policy", 1), d.Matched);
    }

    // ---- the user's answer

    private static (CompiledPolicy Policy, PolicyRequest Request, PolicyDecision Asked) Asked(string policy, string source = "test-vm1")
    {
        var compiled = Load(policy);
        var request = new PolicyRequest("test.Service", "+", source, "test-vm2");
        return (compiled, request, compiled.Evaluate(request, Default));
    }

    [Fact]
    public void User_denies()
    {
        var (policy, request, asked) = Asked("test.Service * @anyvm @anyvm ask");
        var d = policy.Answer(asked, request, Default, null);
        Assert.Equal(PolicyResult.Deny, d.Result);
        Assert.Equal("denied by the user test.policy:1", d.Reason);
        Assert.False(d.Notify);
        var (p2, r2, a2) = Asked("test.Service * @anyvm @anyvm ask notify=yes");
        Assert.True(p2.Answer(a2, r2, Default, null).Notify);
    }

    [Fact]
    public void User_picks_a_target_not_offered()
    {
        var (policy, request, asked) = Asked("test.Service * @anyvm @anyvm ask");
        var d = policy.Answer(asked, request, Default, "dom0");
        Assert.Equal("target dom0 is not a valid choice", d.Reason);
        Assert.True(d.Notify);
    }

    [Theory]
    [InlineData("test-vm3", "test-vm3")]
    [InlineData("@dispvm:test-vm3", "@dispvm:test-vm3")]
    public void User_picks_an_offered_target(string pick, string target)
    {
        var (policy, request, asked) = Asked("test.Service * @anyvm @anyvm ask user=u");
        var d = policy.Answer(asked, request, Default, pick);
        Assert.Equal(PolicyResult.Allow, d.Result);
        Assert.Equal(target, d.Target);
        Assert.Equal("u", d.User);
        Assert.Equal("test-vm2", d.RequestedTarget);
    }

    [Fact]
    public void User_picks_literal_dispvm_offered_by_target_redirect()
    {
        var (policy, request, asked) = Asked("test.Service * @anyvm @anyvm ask target=@dispvm");
        Assert.Equal("@dispvm:default-dvm", policy.Answer(asked, request, Default, "@dispvm").Target);
    }

    [Fact]
    public void User_picks_dom0()
    {
        var (policy, request, asked) = Asked("test.Service * @anyvm @anyvm ask target=@adminvm");
        Assert.Equal("dom0", policy.Answer(asked, request, Default, "dom0").Target);
    }

    [Fact]
    public void Answer_to_a_non_ask_is_the_decision_itself()
    {
        var (policy, request, asked) = Asked("test.Service * @anyvm @anyvm deny");
        Assert.Same(asked, policy.Answer(asked, request, Default, "test-vm2"));
    }

    // ---- §7 log lines and helper decisions

    [Fact]
    public void Log_lines()
    {
        var allowed = Eval("test.Service * @anyvm @anyvm allow target=test-vm3", "test-vm1", "no-such-vm");
        Assert.Equal("qrexec: test.Service+: test-vm1 -> @default: allowed to test-vm3",
            PolicyDecisions.LogLine(new("test.Service", "+", "test-vm1", "no-such-vm"), allowed));
        var request = new PolicyRequest("admin.vm.CreateDisposable", "+", "work-qubesos", "qubes-builder-dvm");
        Assert.Equal("qrexec: admin.vm.CreateDisposable: work-qubesos -> qubes-builder-dvm: denied: no matching rule found",
            PolicyDecisions.LogLine(request, CompiledPolicy.Empty.Evaluate(request, Default)));
        var withArg = new PolicyRequest("test.Service", "+arg", "test-vm1", "test-vm2");
        Assert.Equal("qrexec: test.Service+arg: test-vm1 -> test-vm2: denied: denied by policy test.policy:1",
            PolicyDecisions.LogLine(withArg, Load("test.Service * @anyvm @anyvm deny").Evaluate(withArg, Default)));
        var error = PolicyDecisions.ParseError(new PolicySyntaxException("/etc/qubes/policy.d/30-user.policy", 3, "invalid directive"), withArg);
        Assert.Equal(PolicyResult.ParseError, error.Result);
        Assert.False(error.Notify);
        Assert.Equal("qrexec: test.Service+arg: test-vm1 -> test-vm2: error loading policy: /etc/qubes/policy.d/30-user.policy:3: invalid directive",
            PolicyDecisions.LogLine(withArg, error));
        var badTarget = new PolicyRequest("test.Service", "+", "test-vm1", "@anyvm");
        Assert.Equal("qrexec: test.Service: test-vm1 -> @anyvm: error loading policy: <unknown>:0: invalid intendedtarget token: '@anyvm'",
            PolicyDecisions.LogLine(badTarget, CompiledPolicy.Empty.Evaluate(badTarget, Default)));
    }

    [Fact]
    public void Loopback_and_non_interactive_ask()
    {
        var request = new PolicyRequest("test.Service", "+", "test-vm1", "test-vm1");
        var allowed = Load("test.Service * @anyvm @anyvm allow").Evaluate(request, Default);
        Assert.Equal(PolicyResult.Allow, allowed.Result);
        var executed = PolicyDecisions.ForExecution(allowed, request);
        Assert.Equal("loopback qrexec connection not supported", executed.Reason);
        var asked = Load("test.Service * @anyvm @anyvm ask").Evaluate(request, Default);
        Assert.Equal("denied for non-interactive ask", PolicyDecisions.NonInteractiveAsk(asked).Reason);
    }
}
