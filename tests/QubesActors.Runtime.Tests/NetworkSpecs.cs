using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>The network graph at run time: live netvm changes, teardown order, netvm crashes, firewalls (§3.1, §4).</summary>
public sealed class NetworkSpecs : QubesSpec
{
    public NetworkSpecs(ITestOutputHelper output) : base(output)
    {
        Boot();
        CreateLayout();
        CreateApp("vpn", "sys-net", ("provides_network", "True"));
    }

    [Fact]
    public void A_live_netvm_change_replumbs_a_running_qube_and_moves_its_firewall()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new StartQube("vpn", Dom0));
        AwaitAssert(() => Assert.NotNull(Backend.FirewallOf("sys-firewall", "work")), T);

        Ok(new SetProperty("work", "netvm", "vpn", Dom0));
        AwaitAssert(() =>
        {
            Assert.Equal("vpn", Backend.NetworkOf("work"));
            Assert.Equal("vpn", Qube("work").ConnectedNetVm);
            Assert.NotNull(Backend.FirewallOf("vpn", "work"));
            Assert.Null(Backend.FirewallOf("sys-firewall", "work"));
        }, T);
        Assert.Equal(PowerState.Running, Qube("work").Power);
        Assert.Equal(1, Backend.StartCount("work"));
    }

    [Fact]
    public void A_live_netvm_change_to_a_stopped_netvm_is_refused()
    {
        Ok(new StartQube("work", Dom0));
        AssertError<QubesVMNotStartedError>(Refused(new SetProperty("work", "netvm", "vpn", Dom0)), "Cannot dynamically attach to stopped qube vpn");
        Assert.Equal("sys-firewall", Qube("work").Property("netvm"));
        Assert.Equal("sys-firewall", Backend.NetworkOf("work"));
    }

    [Fact]
    public void Setting_netvm_to_none_on_a_running_qube_detaches_it()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new SetProperty("work", "netvm", "", Dom0));
        AwaitAssert(() =>
        {
            Assert.Null(Backend.NetworkOf("work"));
            Assert.Null(Qube("work").ConnectedNetVm);
        }, T);
    }

    [Fact]
    public void Changing_the_netvm_of_a_halted_qube_touches_no_domain()
    {
        var from = Backend.Calls.Count;
        Ok(new SetProperty("work", "netvm", "vpn", Dom0));
        Assert.Empty(CallsSince(from));
        Ok(new StartQube("work", Dom0));
        Assert.Equal("vpn", Backend.NetworkOf("work"));
        Assert.False(Backend.IsRunning("sys-firewall"));
    }

    [Fact]
    public void ShutdownAll_tears_down_clients_then_sys_firewall_then_sys_net()
    {
        CreateApp("personal");
        Ok(new StartQube("work", Dom0));
        Ok(new StartQube("personal", Dom0));
        var from = Backend.Calls.Count;
        Ok(new ShutdownAll(false, Dom0));
        var order = CallsSince(from).Where(c => c.StartsWith("shutdown ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, order.Count);
        Assert.Equal(["shutdown personal", "shutdown work"], order.Take(2).Order(StringComparer.Ordinal));
        Assert.Equal(["shutdown sys-firewall", "shutdown sys-net"], order.Skip(2));
        var state = Host.Snapshot().State;
        Assert.All(state.Qubes.Values.Where(q => q.Class != QubeClass.AdminVM), q => Assert.Equal(PowerState.Halted, q.Power));
        Assert.Equal(PowerState.Running, state.Get("dom0").Power);
    }

    [Fact]
    public void ShutdownAll_without_force_reports_a_paused_qube_once_and_leaves_its_netvms_up()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        var from = Backend.Calls.Count;
        var error = Refused(new ShutdownAll(false, Dom0));
        Assert.Equal("Failed to shut down: work: Domain not running (either powered off or paused): 'work'", error.Message);
        Assert.Equal(PowerState.Paused, Qube("work").Power);
        Assert.Equal(PowerState.Running, Qube("sys-firewall").Power);
        Assert.DoesNotContain(CallsSince(from), c => c.StartsWith("shutdown ", StringComparison.Ordinal));
    }

    [Fact]
    public void ShutdownAll_with_nothing_running_is_done_at_once()
    {
        var from = Backend.Calls.Count;
        Ok(new ShutdownAll(true, Dom0));
        Assert.Empty(CallsSince(from));
    }

    [Fact]
    public void A_netvm_that_crashes_and_restarts_gets_its_clients_network_back_automatically()
    {
        Ok(new StartQube("work", Dom0));
        Assert.Equal("sys-firewall", Backend.NetworkOf("work"));
        var from = Backend.Calls.Count;
        Backend.Crash("sys-firewall");
        AwaitAssert(() =>
        {
            Assert.Equal(2, Backend.StartCount("sys-firewall"));
            Assert.Equal(PowerState.Running, Qube("sys-firewall").Power);
            Assert.Equal("sys-firewall", Backend.NetworkOf("work"));
            Assert.Equal("sys-firewall", Qube("work").ConnectedNetVm);
        }, T, TimeSpan.FromMilliseconds(50));
        var calls = CallsSince(from);
        var detached = calls.IndexOf("detach-network work");
        var restarted = calls.IndexOf("start sys-firewall");
        var reattached = calls.IndexOf("attach-network work sys-firewall");
        Assert.True(detached >= 0 && restarted > detached && reattached > restarted, string.Join(" | ", calls));
        Assert.Equal(PowerState.Running, Qube("work").Power);
        AwaitAssert(() => Assert.NotNull(Backend.FirewallOf("sys-firewall", "work")), T);
    }

    [Fact]
    public void Firewall_rules_of_a_running_client_reach_its_netvm()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new SetFirewall("work", "action=accept dsthost=example.com\naction=drop\n", Dom0));
        AwaitAssert(() =>
        {
            var rules = Backend.FirewallOf("sys-firewall", "work");
            Assert.NotNull(rules);
            Assert.Equal(Qube("work").Firewall!.Value.ToArray(), rules.Rules.ToArray());
            Assert.Equal(2, rules.Rules.Length);
            Assert.Contains("example.com", rules.Rules[0], StringComparison.Ordinal);
            Assert.Equal(Addressing.Ip(Qube("work")), rules.ClientIp);
        }, T);
    }

    [Fact]
    public void Firewall_rules_set_while_halted_are_loaded_into_the_netvm_at_start()
    {
        Ok(new SetFirewall("work", "action=drop\n", Dom0));
        Ok(new StartQube("work", Dom0));
        AwaitAssert(() => Assert.Equal(["action=drop"], (Backend.FirewallOf("sys-firewall", "work")?.Rules ?? []).ToArray()), T);
    }

    [Fact]
    public void A_bad_firewall_rule_is_refused_and_changes_nothing()
    {
        Ok(new StartQube("work", Dom0));
        Assert.IsAssignableFrom<QubesError>(Refused(new SetFirewall("work", "action=accept\naction=bogus\n", Dom0)));
        Assert.Null(Qube("work").Firewall);
    }
}
