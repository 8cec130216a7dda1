using QubesActors.Core.Policy;
using Xunit;
using static QubesActors.Core.Tests.Policy.PolicyTestSystem;

namespace QubesActors.Core.Tests.Policy;

public sealed class PolicyBasicsTests
{
    [Fact]
    public void Allow_to_the_named_target()
    {
        var d = Eval("test.Service * @anyvm @anyvm allow", "test-vm1", "test-vm2");
        Assert.Equal(PolicyResult.Allow, d.Result);
        Assert.Equal("test-vm2", d.Target);
        Assert.Null(d.User);
        Assert.False(d.Notify);
        Assert.True(d.Autostart);
        Assert.Equal(new PolicyLocation("test.policy", 1), d.Matched);
        Assert.Equal("test-vm2", d.RequestedTarget);
    }

    [Fact]
    public void No_rule_denies()
    {
        var d = Eval("other.Service * @anyvm @anyvm allow", "test-vm1", "test-vm2");
        Assert.Equal(PolicyResult.Deny, d.Result);
        Assert.Equal("no matching rule found", d.Reason);
        Assert.True(d.Notify);
    }

    [Fact]
    public void First_matching_rule_wins()
    {
        var d = Eval("""
            test.Service * @anyvm test-vm2 deny
            test.Service * @anyvm @anyvm allow
            """, "test-vm1", "test-vm2");
        Assert.Equal(PolicyResult.Deny, d.Result);
        Assert.Equal("denied by policy test.policy:1", d.Reason);
        Assert.True(d.Notify);
    }

    [Fact]
    public void Deny_notify_no()
    {
        var d = Eval("test.Service * @anyvm @anyvm deny notify=no", "test-vm1", "test-vm2");
        Assert.False(d.Notify);
    }

    [Fact]
    public void Comments_and_blank_lines_count_as_lines()
    {
        var d = Eval("# comment\n\n   # indented\n\ttest.Service * @anyvm @anyvm deny\n", "test-vm1", "test-vm2");
        Assert.Equal("denied by policy test.policy:4", d.Reason);
    }

    [Fact]
    public void Ask_lists_candidates()
    {
        var d = Eval("test.Service * @anyvm @anyvm ask", "test-vm1", "test-vm2");
        Assert.Equal(PolicyResult.Ask, d.Result);
        Assert.Equal(string.Join(",",
            ["@dispvm:default-dvm", "@dispvm:test-vm3", "default-dvm", "test-invalid-dvm", "test-no-dvm", "test-standalone",
             "test-template", "test-vm2", "test-vm3"]),
            string.Join(",", d.TargetsForAsk));
        Assert.Null(d.DefaultTarget);
    }
}
