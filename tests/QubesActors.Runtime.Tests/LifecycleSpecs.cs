using System.Collections.Immutable;
using Akka.Actor;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>Power-state guards and the start/shutdown sequences (docs/qubes-semantics.md §2, §2.1, §3.1).</summary>
public sealed class LifecycleSpecs : QubesSpec
{
    public LifecycleSpecs(ITestOutputHelper output) : base(output)
    {
        Boot();
        CreateLayout();
    }

    [Fact]
    public void Start_is_a_silent_no_op_when_the_qube_is_already_running()
    {
        Ok(new StartQube("work", Dom0));
        var starts = Backend.StartCount("work");
        Ok(new StartQube("work", Dom0));
        Assert.Equal(starts, Backend.StartCount("work"));
        Assert.Equal(PowerState.Running, Qube("work").Power);
    }

    [Fact]
    public void Start_is_a_silent_no_op_when_the_qube_is_paused()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        Ok(new StartQube("work", Dom0));
        Assert.Equal(1, Backend.StartCount("work"));
        Assert.Equal(PowerState.Paused, Qube("work").Power);
    }

    [Fact]
    public void Shutdown_of_a_halted_qube_is_refused_as_powered_off()
    {
        AssertError<QubesVMNotStartedError>(Refused(new ShutdownQube("work", false, false, Dom0)), "Domain is powered off: 'work'");
        Assert.Equal("QubesVMNotStartedError", Refused(new ShutdownQube("work", true, true, Dom0)).QubesClassName);
    }

    [Fact]
    public void Kill_of_a_halted_qube_is_refused_as_powered_off() =>
        AssertError<QubesVMNotStartedError>(Refused(new KillQube("work", Dom0)), "Domain is powered off: 'work'");

    [Fact]
    public void Pause_and_suspend_of_a_halted_qube_are_refused_as_not_running()
    {
        AssertError<QubesVMNotRunningError>(Refused(new PauseQube("work", Dom0)), "Domain not running (either powered off or paused): 'work'");
        AssertError<QubesVMNotRunningError>(Refused(new SuspendQube("work", Dom0)), "Domain not running (either powered off or paused): 'work'");
    }

    [Fact]
    public void Unpause_and_resume_of_a_running_qube_are_refused_as_not_paused()
    {
        Ok(new StartQube("work", Dom0));
        AssertError<QubesVMNotPausedError>(Refused(new UnpauseQube("work", Dom0)), "Domain is not paused: 'work'");
        AssertError<QubesVMNotPausedError>(Refused(new ResumeQube("work", Dom0)), "Domain is not paused: 'work'");
    }

    [Fact]
    public void Pause_unpause_suspend_resume_and_kill_move_the_power_state()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        Assert.Equal(PowerState.Paused, Qube("work").Power);
        Assert.Equal(PowerState.Paused, Backend.StateOf("work"));
        AssertError<QubesVMNotRunningError>(Refused(new PauseQube("work", Dom0)), "Domain not running (either powered off or paused): 'work'");
        Ok(new UnpauseQube("work", Dom0));
        Assert.Equal(PowerState.Running, Qube("work").Power);
        Ok(new SuspendQube("work", Dom0));
        Assert.Equal(PowerState.Suspended, Qube("work").Power);
        Ok(new ResumeQube("work", Dom0));
        Assert.Equal(PowerState.Running, Qube("work").Power);
        Ok(new KillQube("work", Dom0));
        Assert.Equal(PowerState.Halted, Qube("work").Power);
        Assert.False(Backend.IsRunning("work"));
    }

    [Fact]
    public void Shutdown_of_a_paused_qube_is_refused_unless_forced_which_destroys_it()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        AssertError<QubesVMNotRunningError>(Refused(new ShutdownQube("work", false, true, Dom0)), "Domain not running (either powered off or paused): 'work'");
        var from = Backend.Calls.Count;
        Ok(new ShutdownQube("work", true, true, Dom0));
        Assert.Equal(PowerState.Halted, Qube("work").Power);
        Assert.Contains("kill work", CallsSince(from));
    }

    [Fact]
    public void Dom0_refuses_start_shutdown_kill_pause_and_suspend()
    {
        AssertError<QubesVMNotHaltedError>(Refused(new StartQube("dom0", Dom0)), "Cannot start Dom0 fake domain!");
        AssertError<QubesVMError>(Refused(new ShutdownQube("dom0", true, true, Dom0)), "Cannot shutdown Dom0 fake domain!");
        AssertError<QubesVMError>(Refused(new KillQube("dom0", Dom0)), "Cannot kill Dom0 fake domain!");
        AssertError<QubesVMError>(Refused(new PauseQube("dom0", Dom0)), "Cannot pause Dom0 fake domain!");
        AssertError<QubesVMError>(Refused(new SuspendQube("dom0", Dom0)), "Cannot suspend Dom0 fake domain!");
        AssertError<QubesVMNotPausedError>(Refused(new UnpauseQube("dom0", Dom0)), "Domain is not paused: 'dom0'");
        Assert.Equal(PowerState.Running, Qube("dom0").Power);
    }

    [Fact]
    public void Commands_to_an_unknown_qube_are_refused_with_no_such_domain() =>
        AssertError<QubesVMNotFoundError>(Refused(new StartQube("nope", Dom0)), "No such domain: 'nope'");

    [Fact]
    public void Remove_refuses_dom0()
        => AssertError<QubesVMInUseError>(Refused(new RemoveQube("dom0", Dom0)), "'dom0' cannot be removed");

    [Fact]
    public void Remove_refuses_a_running_qube()
    {
        Ok(new StartQube("work", Dom0));
        AssertError<QubesVMNotHaltedError>(Refused(new RemoveQube("work", Dom0)), "Domain is not powered off: 'work'");
    }

    [Fact]
    public void Remove_refuses_a_qube_installed_by_rpm_before_checking_its_power_state()
    {
        Ok(new SetProperty("fedora", "installed_by_rpm", "True", Dom0));
        AssertError<QubesVMInUseError>(Refused(new RemoveQube("fedora", Dom0)), "VM installed by package manager: fedora");
    }

    [Fact]
    public void Remove_refuses_a_qube_another_qube_references_explicitly()
    {
        AssertError<QubesVMInUseError>(Refused(new RemoveQube("sys-firewall", Dom0)),
            "Domain is in use: 'sys-firewall';  see 'journalctl -u qubesd -e' in dom0 for details");
        AssertError<QubesVMInUseError>(Refused(new RemoveQube("fedora", Dom0)),
            "Domain is in use: 'fedora';  see 'journalctl -u qubesd -e' in dom0 for details");
    }

    [Fact]
    public void Remove_refuses_a_qube_a_global_property_points_to()
    {
        CreateApp("vpn", "sys-net", ("provides_network", "True"));
        Ok(new SetGlobalProperty("default_netvm", "vpn", Dom0));
        AssertError<QubesVMInUseError>(Refused(new RemoveQube("vpn", Dom0)),
            "Domain is in use: 'vpn';  see 'journalctl -u qubesd -e' in dom0 for details");
        Ok(new ResetGlobalProperty("default_netvm", Dom0));
        Ok(new RemoveQube("vpn", Dom0));
        Assert.Null(Host.Snapshot().State.Find("vpn"));
    }

    [Fact]
    public void Remove_refuses_the_backend_of_devices_assigned_to_other_qubes()
    {
        CreateApp("sys-usb", null);
        Ok(new AssignDevice("work", "usb", "sys-usb:2-1", "auto-attach", ImmutableSortedDictionary<string, string>.Empty, Dom0));
        AssertError<QubesVMInUseError>(Refused(new RemoveQube("sys-usb", Dom0)), "VM has devices assigned to other VMs: sys-usb:2-1");
    }

    [Fact]
    public void A_qube_removed_and_created_again_at_once_under_the_same_name_gets_a_working_actor()
    {
        for (var round = 0; round < 5; round++)
        {
            CreateApp("again");
            Ok(new RemoveQube("again", Dom0));
            CreateApp("again");
            Ok(new SetFeature("again", "round", round.ToString(System.Globalization.CultureInfo.InvariantCulture), Dom0));
            Assert.Equal("Halted", Ok(new PingQube("again", Dom0)).Output);
            Ok(new RemoveQube("again", Dom0));
        }
        Assert.Null(Host.Snapshot().State.Find("again"));
    }

    [Fact]
    public void Start_must_bring_up_the_netvm_chain_first()
    {
        var from = Backend.Calls.Count;
        Ok(new StartQube("work", Dom0));
        var starts = CallsSince(from).Where(c => c.StartsWith("start ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["start sys-net", "start sys-firewall", "start work"], starts);
        var c = Host.Snapshot().State;
        Assert.All(new[] { "sys-net", "sys-firewall", "work" }, n => Assert.Equal(PowerState.Running, c.Get(n).Power));
        AwaitAssert(() =>
        {
            Assert.Equal("sys-firewall", Backend.NetworkOf("work"));
            Assert.Equal("sys-net", Backend.NetworkOf("sys-firewall"));
        }, T);
    }

    [Fact]
    public void Start_must_fail_with_the_netvm_error_when_the_netvm_fails_to_start()
    {
        var events = Subscribe();
        Backend.FailNextStart("sys-net", "no network card");
        var error = Refused(new StartQube("work", Dom0));
        Assert.Equal("Start failed: no network card", error.Message);
        var seen = CollectUntil(events, Is("work", "domain-start-failed"));
        Assert.Contains(seen, n => Is("sys-net", "domain-start-failed")(n));
        var clientFailure = seen.Last();
        Assert.Contains(clientFailure.Arguments, a => a.Key == "reason" && a.Value.Contains("no network card", StringComparison.Ordinal));
        var c = Host.Snapshot().State;
        Assert.All(new[] { "sys-net", "sys-firewall", "work" }, n => Assert.Equal(PowerState.Halted, c.Get(n).Power));
        Assert.Equal(0, Backend.StartCount("work"));
        Assert.Equal(0, Backend.StartCount("sys-firewall"));
    }

    [Fact]
    public void Start_must_emit_pre_start_before_the_netvm_chain_and_start_last()
    {
        var events = Subscribe();
        Ok(new StartQube("work", Dom0));
        var seen = CollectUntil(events, Is("work", "domain-start")).Where(n => n.Event.StartsWith("domain-", StringComparison.Ordinal)).ToList();
        var names = seen.Select(n => $"{n.Subject} {n.Event}").ToList();
        Assert.Equal(
        [
            "work domain-pre-start",
            "sys-firewall domain-pre-start",
            "sys-net domain-pre-start",
            "sys-net domain-pre-spawn",
            "sys-net domain-spawn",
            "sys-net domain-start",
            "sys-firewall domain-pre-spawn",
            "sys-firewall domain-spawn",
            "sys-firewall domain-start",
            "work domain-pre-spawn",
            "work domain-spawn",
            "work domain-start",
        ], names);
    }

    [Fact]
    public void Shutdown_must_emit_pre_shutdown_then_stopped_then_shutdown()
    {
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Ok(new ShutdownQube("work", false, true, Dom0));
        var seen = CollectUntil(events, Is("work", "domain-shutdown")).Where(n => n.Subject == "work").Select(n => n.Event).ToList();
        Assert.Equal(["domain-pre-shutdown", "domain-stopped", "domain-shutdown"], seen);
        Assert.Equal(PowerState.Halted, Qube("work").Power);
    }

    [Fact]
    public void Kill_fires_no_pre_event_only_stopped_and_shutdown()
    {
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Ok(new KillQube("work", Dom0));
        var seen = CollectUntil(events, Is("work", "domain-shutdown")).Where(n => n.Subject == "work").Select(n => n.Event).ToList();
        Assert.Equal(["domain-stopped", "domain-shutdown"], seen);
    }

    [Fact]
    public void Shutdown_without_wait_answers_at_once_and_the_qube_halts_later()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new ShutdownQube("work", false, false, Dom0));
        AwaitPower("work", PowerState.Halted);
        Assert.False(Backend.IsRunning("work"));
    }

    [Fact]
    public void Graceful_shutdown_falls_back_to_kill_after_shutdown_timeout_and_wait_reports_the_timeout()
    {
        Ok(new SetProperty("work", "shutdown_timeout", "1", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.HangShutdown("work");
        var events = Subscribe();
        var from = Backend.Calls.Count;
        var error = Refused(new ShutdownQube("work", false, true, Dom0));
        AssertError<QubesVMShutdownTimeoutError>(error, "Domain shutdown timed out: 'work'");
        Assert.Equal(["shutdown work", "kill work"], CallsSince(from).Where(c => c is "shutdown work" or "kill work"));
        Assert.Equal(PowerState.Halted, Qube("work").Power);
        Assert.False(Backend.IsRunning("work"));
        var seen = CollectUntil(events, Is("work", "domain-shutdown")).Where(n => n.Subject == "work").Select(n => n.Event).ToList();
        Assert.Equal(["domain-pre-shutdown", "domain-shutdown-failed", "domain-stopped", "domain-shutdown"], seen);
    }

    [Fact]
    public void Graceful_shutdown_without_wait_is_killed_after_the_timeout_too()
    {
        Ok(new SetProperty("work", "shutdown_timeout", "1", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.HangShutdown("work");
        Ok(new ShutdownQube("work", false, false, Dom0));
        AwaitPower("work", PowerState.Halted);
        Assert.Contains("kill work", Backend.Calls);
    }

    [Fact]
    public void A_netvm_with_running_clients_refuses_shutdown_unless_forced()
    {
        Ok(new StartQube("work", Dom0));
        AssertError<QubesVMInUseError>(Refused(new ShutdownQube("sys-firewall", false, true, Dom0)),
            "There are other VMs connected to this VM: work");
        Assert.Equal(PowerState.Running, Qube("sys-firewall").Power);

        Ok(new ShutdownQube("sys-firewall", true, true, Dom0));
        Assert.Equal(PowerState.Halted, Qube("sys-firewall").Power);
        Assert.Equal(PowerState.Running, Qube("work").Power);
        AwaitAssert(() =>
        {
            Assert.Null(Backend.NetworkOf("work"));
            Assert.Null(Qube("work").ConnectedNetVm);
        }, T);
    }

    [Fact]
    public void A_netvm_counts_paused_clients_as_connected()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        AssertError<QubesVMInUseError>(Refused(new ShutdownQube("sys-firewall", false, true, Dom0)),
            "There are other VMs connected to this VM: work");
    }

    [Fact]
    public void Pause_and_unpause_emit_their_pre_events_first()
    {
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Ok(new PauseQube("work", Dom0));
        Ok(new UnpauseQube("work", Dom0));
        var seen = CollectUntil(events, Is("work", "domain-unpaused")).Where(n => n.Subject == "work").Select(n => n.Event).ToList();
        Assert.Equal(["domain-pre-paused", "domain-paused", "domain-pre-unpaused", "domain-unpaused"], seen);
    }

    [Fact]
    public void A_forced_ShutdownAll_destroys_paused_qubes_too()
    {
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        Ok(new ShutdownAll(true, Dom0));
        var state = Host.Snapshot().State;
        Assert.All(state.Qubes.Values.Where(q => q.Class != QubeClass.AdminVM), q => Assert.Equal(PowerState.Halted, q.Power));
        Assert.False(Backend.IsRunning("work"));
        Assert.False(Backend.IsRunning("sys-net"));
    }

    [Fact]
    public void A_prohibited_start_fails_with_the_rationale()
    {
        Ok(new SetFeature("work", "prohibit-start", "under repair", Dom0));
        var events = Subscribe();
        var error = Refused(new StartQube("work", Dom0));
        Assert.Equal("Qube start is prohibited. Rationale: under repair", error.Message);
        var failed = CollectUntil(events, Is("work", "domain-start-failed")).Last();
        Assert.Contains(failed.Arguments, a => a.Key == "reason" && a.Value == "Qube start is prohibited. Rationale: under repair");
        Assert.Equal(0, Backend.StartCount("sys-net"));
    }

    [Fact]
    public async Task A_status_query_answers_while_a_start_is_in_flight()
    {
        // Ping reaches the qube actor itself, which stashes it behind the start in flight; the collection answers at once.
        var start = Host.Qubes.Ask<CommandResult>(new StartQube("work", Dom0), T);
        var snapshot = Host.Snapshot();
        Assert.NotNull(snapshot.State.Find("work"));
        Assert.IsType<Done>(await start);
        Assert.Equal("Running", Ok(new PingQube("work", Dom0)).Output);
    }
}
