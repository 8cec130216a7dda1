using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>Restart policy at run time: type, intensity, failed state, reset (DESIGN.md, restart policy).</summary>
public sealed class RestartSpecs : QubesSpec
{
    /// <summary>Longer than the first backoff (1 s + 20 %): a restart that was going to happen has happened.</summary>
    private static readonly TimeSpan NoRestartWindow = TimeSpan.FromSeconds(1.6);

    public RestartSpecs(ITestOutputHelper output) : base(output)
    {
        Boot();
        CreateLayout();
    }

    private void AwaitRestarted(string name, int starts) =>
        AwaitAssert(() =>
        {
            Assert.Equal(starts, Backend.StartCount(name));
            Assert.Equal(PowerState.Running, Qube(name).Power);
        }, T, TimeSpan.FromMilliseconds(50));

    [Fact]
    public void Service_qubes_are_permanent_and_app_qubes_temporary_by_default()
    {
        var c = Host.Snapshot().State;
        Assert.Equal("permanent", c.Effective(c.Get("sys-net"), "restart"));
        Assert.Equal("permanent", c.Effective(c.Get("sys-firewall"), "restart"));
        Assert.Equal("temporary", c.Effective(c.Get("work"), "restart"));
        Assert.Equal("temporary", c.Effective(c.Get("fedora"), "restart"));
    }

    [Fact]
    public void A_permanent_qube_is_restarted_after_a_crash()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.Crash("work");
        AwaitAssert(() =>
        {
            Assert.Equal(2, Backend.StartCount("work"));
            Assert.Equal(PowerState.Running, Qube("work").Power);
        }, T, TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, Qube("work").ConsecutiveRestarts);
    }

    [Fact]
    public void A_permanent_qube_is_restarted_after_a_clean_unasked_stop_too()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.Crash("work", "powered off from inside", crashed: false);
        AwaitAssert(() => Assert.Equal(2, Backend.StartCount("work")), T, TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void A_transient_qube_is_restarted_after_a_crash()
    {
        Ok(new SetProperty("work", "restart", "transient", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.Crash("work");
        AwaitAssert(() =>
        {
            Assert.Equal(2, Backend.StartCount("work"));
            Assert.Equal(PowerState.Running, Qube("work").Power);
        }, T, TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void A_transient_qube_is_not_restarted_after_a_clean_unasked_stop()
    {
        Ok(new SetProperty("work", "restart", "transient", Dom0));
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Backend.Crash("work", "powered off from inside", crashed: false);
        CollectUntil(events, Is("work", "domain-shutdown"));
        events.ExpectNoMsg(NoRestartWindow);
        Assert.Equal(1, Backend.StartCount("work"));
        Assert.Equal(PowerState.Halted, Qube("work").Power);
        Assert.Equal(StopKind.Shutdown, Qube("work").LastStop);
    }

    [Fact]
    public void A_temporary_qube_is_never_restarted()
    {
        Ok(new SetProperty("work", "restart", "temporary", Dom0));
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Backend.Crash("work");
        CollectUntil(events, Is("work", "domain-shutdown"));
        events.ExpectNoMsg(NoRestartWindow);
        Assert.Equal(1, Backend.StartCount("work"));
        Assert.Equal(PowerState.Halted, Qube("work").Power);
        Assert.Equal(StopKind.Crashed, Qube("work").LastStop);
    }

    [Fact]
    public void A_stop_that_was_asked_for_is_never_restarted()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Ok(new ShutdownQube("work", false, true, Dom0));
        events.FishForMessage<QubesEventNotice>(n => n.Subject == "work" && n.Event == "domain-shutdown", T);
        events.ExpectNoMsg(NoRestartWindow);
        Assert.Equal(1, Backend.StartCount("work"));
    }

    [Fact]
    public void Past_the_restart_intensity_the_qube_is_marked_failed_persistently_and_reported()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new SetProperty("work", "restart_intensity", "1", Dom0));
        Ok(new SetProperty("work", "restart_period", "60", Dom0));
        Ok(new StartQube("work", Dom0));
        var events = Subscribe();
        Backend.Crash("work");
        AwaitRestarted("work", 2);
        Backend.Crash("work");

        var limit = events.FishForMessage<QubesEventNotice>(n => n.Event == "domain-restart-limit", T);
        Assert.Equal("work", limit.Subject);
        Assert.Contains("start limit hit", limit.Arguments.Single(a => a.Key == "reason").Value, StringComparison.Ordinal);
        AwaitAssert(() =>
        {
            var work = Qube("work");
            Assert.True(work.Failed);
            Assert.Contains("start limit hit", work.FailedReason, StringComparison.Ordinal);
        }, T);
        Assert.Equal(PowerState.Halted, Qube("work").Power);
        Assert.Equal(2, Backend.StartCount("work"));

        // Persisted: the journal holds the failure.
        var stream = JournalLoader.Load(Settings).Qubes.Single(s => s.Events[0] is QubeCreated { Name: "work" });
        Assert.Contains(stream.Events, e => e is QubeFailed);
    }

    [Fact]
    public void ResetFailed_clears_the_failed_state_and_the_qube_can_start_again()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new SetProperty("work", "restart_intensity", "1", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.Crash("work");
        AwaitRestarted("work", 2);
        Backend.Crash("work");
        AwaitAssert(() => Assert.True(Qube("work").Failed), T, TimeSpan.FromMilliseconds(50));
        Assert.Equal(2, Backend.StartCount("work"));
        // Like systemd's start-limit-hit: not even an administrator's start brings it back before reset-failed.
        Assert.Contains("reset-failed", Refused(new StartQube("work", Dom0)).Message, StringComparison.Ordinal);
        Assert.Equal(2, Backend.StartCount("work"));

        Ok(new ResetFailed("work", Dom0));
        var work = Qube("work");
        Assert.False(work.Failed);
        Assert.Null(work.FailedReason);
        Assert.Empty(work.RecentCrashes);
        Ok(new StartQube("work", Dom0));
        Assert.Equal(PowerState.Running, Qube("work").Power);
    }

    [Fact]
    public void ResetFailed_of_a_qube_that_has_not_failed_is_a_no_op()
    {
        Ok(new ResetFailed("work", Dom0));
        Assert.False(Qube("work").Failed);
    }

    [Fact]
    public void A_restart_records_its_attempt_and_the_next_backoff_grows()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.Crash("work");
        AwaitRestarted("work", 2);
        var stream = JournalLoader.Load(Settings).Qubes.Single(s => s.Events[0] is QubeCreated { Name: "work" });
        var scheduled = Assert.Single(stream.Events.OfType<QubeRestartScheduled>());
        Assert.Equal(1, scheduled.Attempt);
        Assert.InRange(scheduled.Delay, TimeSpan.FromSeconds(0.8), TimeSpan.FromSeconds(1.2));
        Assert.Equal(EventCause.SupervisorKind, stream.Events.OfType<QubeStarted>().Last().Cause.Kind);
    }
}
