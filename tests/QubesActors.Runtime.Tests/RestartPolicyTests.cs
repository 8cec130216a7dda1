using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using Xunit;

namespace QubesActors.Runtime.Tests;

/// <summary>The pure restart policy: type, intensity window, exponential backoff with jitter and cap, quiet reset.</summary>
public sealed class RestartPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly RestartSettings Permanent = RestartSettings.ServiceDefault;

    private static QubeState Qube(params DateTimeOffset[] crashes) => new()
    {
        Uuid = Guid.NewGuid(), Name = "work", Class = QubeClass.AppVM, Qid = 3, Label = "blue",
        RecentCrashes = [.. crashes],
    };

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    [InlineData(6, 32)]
    [InlineData(7, 60)]
    [InlineData(40, 60)]
    public void Backoff_doubles_from_one_second_and_is_capped_at_sixty(int attempt, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), RestartPolicy.Backoff(Permanent, attempt, 0.5));

    [Fact]
    public void Backoff_jitter_stays_within_twenty_percent()
    {
        Assert.Equal(TimeSpan.FromSeconds(3.2), RestartPolicy.Backoff(Permanent, 3, 0.0));
        Assert.Equal(TimeSpan.FromSeconds(4.8), RestartPolicy.Backoff(Permanent, 3, 1.0));
        for (var attempt = 1; attempt < 10; attempt++)
            Assert.True(RestartPolicy.Backoff(Permanent, attempt + 1, 0.5) >= RestartPolicy.Backoff(Permanent, attempt, 0.5));
    }

    [Fact]
    public void Each_consecutive_restart_is_a_later_attempt_with_a_longer_delay()
    {
        var first = Assert.IsType<RestartDecision.RestartAfter>(RestartPolicy.Decide(Qube(Now), Permanent, StopKind.Crashed, Now, 0.5));
        var second = Assert.IsType<RestartDecision.RestartAfter>(
            RestartPolicy.Decide(Qube(Now) with { ConsecutiveRestarts = first.Attempt }, Permanent, StopKind.Crashed, Now, 0.5));
        Assert.Equal(1, first.Attempt);
        Assert.Equal(2, second.Attempt);
        Assert.True(second.Delay > first.Delay);
    }

    [Theory]
    [InlineData(RestartType.Permanent, StopKind.Crashed, true)]
    [InlineData(RestartType.Permanent, StopKind.Shutdown, true)]
    [InlineData(RestartType.Transient, StopKind.Crashed, true)]
    [InlineData(RestartType.Transient, StopKind.Shutdown, false)]
    [InlineData(RestartType.Temporary, StopKind.Crashed, false)]
    [InlineData(RestartType.Temporary, StopKind.Shutdown, false)]
    public void The_restart_type_decides_which_unasked_stops_are_restarted(RestartType type, StopKind stop, bool restarted)
    {
        var decision = RestartPolicy.Decide(Qube(Now), Permanent with { Type = type }, stop, Now, 0.5);
        Assert.Equal(restarted, decision is RestartDecision.RestartAfter);
        if (!restarted)
            Assert.IsType<RestartDecision.LeaveDown>(decision);
    }

    [Fact]
    public void More_crashes_than_the_intensity_within_the_period_give_up()
    {
        var settings = Permanent with { Intensity = 2, Period = TimeSpan.FromSeconds(60) };
        Assert.IsType<RestartDecision.RestartAfter>(RestartPolicy.Decide(Qube(Now.AddSeconds(-10), Now), settings, StopKind.Crashed, Now, 0.5));
        var giveUp = Assert.IsType<RestartDecision.GiveUp>(
            RestartPolicy.Decide(Qube(Now.AddSeconds(-20), Now.AddSeconds(-10), Now), settings, StopKind.Crashed, Now, 0.5));
        Assert.Contains("start limit hit", giveUp.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Crashes_older_than_the_period_do_not_count()
    {
        var settings = Permanent with { Intensity = 1, Period = TimeSpan.FromSeconds(60) };
        Assert.IsType<RestartDecision.RestartAfter>(
            RestartPolicy.Decide(Qube(Now.AddMinutes(-5), Now.AddMinutes(-3), Now), settings, StopKind.Crashed, Now, 0.5));
    }

    [Fact]
    public void A_removed_qube_is_left_down() =>
        Assert.IsType<RestartDecision.LeaveDown>(RestartPolicy.Decide(Qube(Now) with { Removed = true }, Permanent, StopKind.Crashed, Now, 0.5));

    [Fact]
    public void A_run_longer_than_the_quiet_period_resets_the_backoff()
    {
        var cause = EventCause.Backend("test");
        var running = Qube() with { Power = PowerState.Running, StartTime = Now, ConsecutiveRestarts = 4 };
        var shortRun = running.Apply(new QubeStopped(StopKind.Crashed, "x") { Time = Now.AddMinutes(1), Cause = cause });
        var longRun = running.Apply(new QubeStopped(StopKind.Crashed, "x") { Time = Now + RestartPolicy.QuietPeriod, Cause = cause });
        Assert.Equal(4, shortRun.ConsecutiveRestarts);
        Assert.Equal(0, longRun.ConsecutiveRestarts);
    }
}
