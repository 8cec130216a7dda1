using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Core.Tests.Model;
using Xunit;

namespace QubesActors.Core.Tests.Rules;

/// <summary>Restart policy (DESIGN.md): type, intensity within a period, exponential backoff with jitter.</summary>
public class RestartPolicyTests
{
    private static readonly DateTimeOffset T0 = TestWorld.T0;
    private static readonly EventCause Backend = EventCause.Backend("domain died");
    private static readonly RestartSettings Service = RestartSettings.ServiceDefault;

    private static QubeState Qube() => new() { Uuid = Guid.NewGuid(), Name = "sys-net", Class = QubeClass.AppVM, Qid = 3, Label = "red" };

    /// <summary>Runs the qube and lets it stop unasked at the given offsets (seconds from T0), as the runtime records it.</summary>
    private static QubeState StoppedAt(StopKind kind, params int[] seconds)
    {
        var q = Qube();
        foreach (var s in seconds)
            q = q.Apply(new QubeStarted(PowerState.Running) { Time = T0 + TimeSpan.FromSeconds(s) - TimeSpan.FromMilliseconds(1), Cause = EventCause.Supervisor("restart") })
                .Apply(new QubeStopped(kind, "died") { Time = T0 + TimeSpan.FromSeconds(s), Cause = Backend });
        return q;
    }

    private static RestartDecision Decide(QubeState q, RestartSettings s, StopKind kind, int nowSeconds) =>
        RestartPolicy.Decide(q, s, kind, T0 + TimeSpan.FromSeconds(nowSeconds), 0.5);

    [Fact]
    public void Service_and_app_defaults_follow_the_design()
    {
        Assert.Equal(new RestartSettings(RestartType.Permanent, 5, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60), 0.2), Service);
        Assert.Equal(Service with { Type = RestartType.Temporary }, RestartSettings.AppDefault);
        Assert.Equal("permanent", RestartType.Permanent.RestartTypeName());
        Assert.Equal("transient", RestartType.Transient.RestartTypeName());
        Assert.Equal("temporary", RestartType.Temporary.RestartTypeName());
    }

    [Theory]
    [InlineData(StopKind.Crashed)]
    [InlineData(StopKind.Shutdown)]
    [InlineData(StopKind.Killed)]
    public void A_permanent_qube_is_restarted_whatever_the_stop(StopKind kind)
    {
        var d = Decide(StoppedAt(kind, 1), Service, kind, 1);
        Assert.Equal(new RestartDecision.RestartAfter(1, TimeSpan.FromSeconds(1)), d);
    }

    [Fact]
    public void A_transient_qube_is_restarted_only_after_a_crash()
    {
        var s = Service with { Type = RestartType.Transient };
        Assert.IsType<RestartDecision.RestartAfter>(Decide(StoppedAt(StopKind.Crashed, 1), s, StopKind.Crashed, 1));
        Assert.Equal(new RestartDecision.LeaveDown("restart=transient"), Decide(StoppedAt(StopKind.Shutdown, 1), s, StopKind.Shutdown, 1));
        Assert.Equal(new RestartDecision.LeaveDown("restart=transient"), Decide(Qube(), s, StopKind.Killed, 1));
    }

    [Theory]
    [InlineData(StopKind.Crashed)]
    [InlineData(StopKind.Shutdown)]
    public void A_temporary_qube_is_never_restarted(StopKind kind)
    {
        Assert.Equal(new RestartDecision.LeaveDown("restart=temporary"), Decide(StoppedAt(kind, 1), RestartSettings.AppDefault, kind, 1));
    }

    [Fact]
    public void A_removed_qube_is_left_down()
    {
        Assert.Equal(new RestartDecision.LeaveDown("removed"), Decide(Qube() with { Removed = true }, Service, StopKind.Crashed, 0));
    }

    [Fact]
    public void Up_to_intensity_restarts_within_the_period_are_allowed_and_the_next_gives_up()
    {
        var fifth = StoppedAt(StopKind.Crashed, 1, 2, 3, 4, 5);
        Assert.IsType<RestartDecision.RestartAfter>(Decide(fifth, Service, StopKind.Crashed, 5));
        var sixth = StoppedAt(StopKind.Crashed, 1, 2, 3, 4, 5, 6);
        var d = Assert.IsType<RestartDecision.GiveUp>(Decide(sixth, Service, StopKind.Crashed, 6));
        Assert.Equal("start limit hit: 6 unexpected stops within 60s (intensity 5)", d.Reason);
    }

    [Fact]
    public void Stops_older_than_the_period_do_not_count()
    {
        var q = StoppedAt(StopKind.Crashed, 0, 1, 2, 3, 4, 65);
        Assert.IsType<RestartDecision.RestartAfter>(Decide(q, Service, StopKind.Crashed, 65));
        // At exactly the period the stop still counts.
        Assert.IsType<RestartDecision.GiveUp>(Decide(StoppedAt(StopKind.Crashed, 0, 1, 2, 3, 4, 60), Service, StopKind.Crashed, 60));
    }

    [Fact]
    public void Intensity_and_period_are_per_qube_settings()
    {
        var s = Service with { Intensity = 1, Period = TimeSpan.FromSeconds(10) };
        Assert.IsType<RestartDecision.RestartAfter>(Decide(StoppedAt(StopKind.Crashed, 1), s, StopKind.Crashed, 1));
        Assert.IsType<RestartDecision.GiveUp>(Decide(StoppedAt(StopKind.Crashed, 1, 5), s, StopKind.Crashed, 5));
        Assert.IsType<RestartDecision.RestartAfter>(Decide(StoppedAt(StopKind.Crashed, 1, 12), s, StopKind.Crashed, 12));
    }

    [Fact]
    public void A_permanent_qube_that_keeps_shutting_itself_down_hits_the_start_limit()
    {
        var q = StoppedAt(StopKind.Shutdown, 1, 2, 3, 4, 5, 6);
        Assert.IsType<RestartDecision.GiveUp>(Decide(q, Service, StopKind.Shutdown, 6));
    }

    [Fact]
    public void The_attempt_number_follows_the_scheduled_restarts()
    {
        var q = StoppedAt(StopKind.Crashed, 1).Apply(new QubeRestartScheduled(3, TimeSpan.FromSeconds(4)) { Time = T0, Cause = EventCause.Supervisor("x") });
        var d = Assert.IsType<RestartDecision.RestartAfter>(Decide(q, Service, StopKind.Crashed, 1));
        Assert.Equal(4, d.Attempt);
        Assert.Equal(TimeSpan.FromSeconds(8), d.Delay);
    }

    [Fact]
    public void After_a_quiet_run_the_backoff_starts_again_from_the_minimum()
    {
        var q = Qube().Apply(new QubeRestartScheduled(5, TimeSpan.FromSeconds(16)) { Time = T0, Cause = EventCause.Supervisor("x") })
            .Apply(new QubeStarted(PowerState.Running) { Time = T0, Cause = EventCause.Supervisor("x") })
            .Apply(new QubeStopped(StopKind.Crashed, null) { Time = T0 + TimeSpan.FromMinutes(11), Cause = Backend });
        var d = Assert.IsType<RestartDecision.RestartAfter>(RestartPolicy.Decide(q, Service, StopKind.Crashed, T0 + TimeSpan.FromMinutes(11), 0.5));
        Assert.Equal(1, d.Attempt);
        Assert.Equal(TimeSpan.FromSeconds(1), d.Delay);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    [InlineData(5, 16)]
    [InlineData(6, 32)]
    [InlineData(7, 60)]
    [InlineData(8, 60)]
    [InlineData(100, 60)]
    [InlineData(int.MaxValue, 60)]
    public void Backoff_doubles_from_the_minimum_and_is_capped(int attempt, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), RestartPolicy.Backoff(Service, attempt, 0.5));
    }

    [Fact]
    public void Jitter_spreads_the_delay_by_plus_or_minus_its_fraction()
    {
        Assert.Equal(TimeSpan.FromSeconds(8 * 0.8), RestartPolicy.Backoff(Service, 4, 0.0));
        Assert.Equal(TimeSpan.FromSeconds(8 * 1.1), RestartPolicy.Backoff(Service, 4, 0.75));
        Assert.Equal(TimeSpan.FromSeconds(1), RestartPolicy.Backoff(Service with { Jitter = 0 }, 1, 0.99));
    }
}

[Properties(MaxTest = 500)]
public class RestartBackoffPropertyTests
{
    private static Gen<RestartSettings> Settings =>
        from minMs in Gen.Choose(1, 10_000)
        from factor in Gen.Choose(1, 1000)
        from jitterPercent in Gen.Choose(0, 100)
        select RestartSettings.ServiceDefault with
        {
            BackoffMin = TimeSpan.FromMilliseconds(minMs),
            BackoffMax = TimeSpan.FromMilliseconds((long)minMs * factor),
            Jitter = jitterPercent / 100.0,
        };

    private static Gen<double> Samples => Gen.Choose(0, 999_999).Select(n => n / 1_000_000.0);

    private static double Nominal(RestartSettings s, int attempt) =>
        Math.Min(s.BackoffMin.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30)), s.BackoffMax.TotalMilliseconds);

    [Property]
    public Property Backoff_stays_within_jitter_of_the_capped_doubling() =>
        Prop.ForAll(Settings.ToArbitrary(), Gen.Choose(1, 200).ToArbitrary(), Samples.ToArbitrary(), (s, attempt, sample) =>
        {
            var delay = RestartPolicy.Backoff(s, attempt, sample).TotalMilliseconds;
            var nominal = Nominal(s, attempt);
            // TimeSpan keeps whole ticks: allow one tick of rounding.
            const double tick = 1e-4;
            return delay >= nominal * (1 - s.Jitter) - tick
                   && delay <= nominal * (1 + s.Jitter) + tick
                   && delay <= s.BackoffMax.TotalMilliseconds * (1 + s.Jitter) + tick
                   && delay >= 0;
        });

    [Property]
    public Property Without_jitter_the_nominal_delay_never_decreases_with_the_attempt() =>
        Prop.ForAll(Settings.ToArbitrary(), Gen.Choose(1, 60).ToArbitrary(), (s, attempt) =>
        {
            var noJitter = s with { Jitter = 0 };
            var a = RestartPolicy.Backoff(noJitter, attempt, 0.3);
            var b = RestartPolicy.Backoff(noJitter, attempt + 1, 0.3);
            return a <= b && b <= s.BackoffMax && a >= TimeSpan.FromMilliseconds(Math.Min(s.BackoffMin.TotalMilliseconds, s.BackoffMax.TotalMilliseconds)) - TimeSpan.FromTicks(1);
        });

    [Property]
    public Property The_jitter_sample_moves_the_delay_monotonically() =>
        Prop.ForAll(Settings.ToArbitrary(), Gen.Choose(1, 40).ToArbitrary(), Samples.Two().ToArbitrary(), (s, attempt, xy) =>
        {
            var (x, y) = xy;
            var (lo, hi) = x <= y ? (x, y) : (y, x);
            return RestartPolicy.Backoff(s, attempt, lo) <= RestartPolicy.Backoff(s, attempt, hi) + TimeSpan.FromTicks(1);
        });

    [Property]
    public Property Decide_gives_up_exactly_when_stops_in_the_period_exceed_the_intensity() =>
        Prop.ForAll(Gen.Choose(0, 8).ToArbitrary(), Gen.Choose(0, 120).ListOf().Select(l => l.Take(12).Order().ToArray()).ToArbitrary(), (intensity, offsets) =>
        {
            var now = TestWorld.T0 + TimeSpan.FromSeconds(120);
            var q = new QubeState { Uuid = Guid.NewGuid(), Name = "q", Class = QubeClass.AppVM, Qid = 1, Label = "red" }
                with { RecentCrashes = offsets.Select(o => TestWorld.T0 + TimeSpan.FromSeconds(o)).ToImmutableList() };
            var s = RestartSettings.ServiceDefault with { Intensity = intensity };
            var inWindow = offsets.Count(o => 120 - o <= 60);
            var d = RestartPolicy.Decide(q, s, StopKind.Crashed, now, 0.5);
            return inWindow > intensity ? d is RestartDecision.GiveUp : d is RestartDecision.RestartAfter;
        });
}
