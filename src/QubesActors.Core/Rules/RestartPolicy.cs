using QubesActors.Core.Model;

namespace QubesActors.Core.Rules;

/// <summary>What the supervisor does about a qube that stopped without being asked to.</summary>
public abstract record RestartDecision
{
    private RestartDecision() { }

    public sealed record LeaveDown(string Reason) : RestartDecision;
    public sealed record RestartAfter(int Attempt, TimeSpan Delay) : RestartDecision;
    /// <summary>Start limit hit: persist the failed state and report to the parent supervisor.</summary>
    public sealed record GiveUp(string Reason) : RestartDecision;
}

/// <summary>
/// A qube's restart policy (DESIGN.md): restart type, intensity (at most N restarts in T), exponential backoff with
/// jitter, reset after a quiet period. Pure: the jitter comes in as a number in [0, 1).
/// </summary>
public sealed record RestartSettings(
    RestartType Type,
    int Intensity,
    TimeSpan Period,
    TimeSpan BackoffMin,
    TimeSpan BackoffMax,
    double Jitter)
{
    public static RestartSettings ServiceDefault { get; } = new(RestartType.Permanent, 5, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60), 0.2);
    public static RestartSettings AppDefault { get; } = ServiceDefault with { Type = RestartType.Temporary };
}

public static class RestartPolicy
{
    public static readonly TimeSpan QuietPeriod = TimeSpan.FromMinutes(10);

    /// <summary>Crash times older than this are forgotten whatever the period (bounds the state).</summary>
    public static readonly TimeSpan MaxWindow = TimeSpan.FromHours(1);

    public static RestartDecision Decide(QubeState qube, RestartSettings settings, StopKind stop, DateTimeOffset now, double jitterSample)
    {
        if (qube.Removed)
            return new RestartDecision.LeaveDown("removed");
        var wanted = settings.Type switch
        {
            RestartType.Permanent => true,
            RestartType.Transient => stop == StopKind.Crashed,
            _ => false,
        };
        if (!wanted)
            return new RestartDecision.LeaveDown($"restart={settings.Type.RestartTypeName()}");

        var inWindow = qube.RecentCrashes.Count(t => now - t <= settings.Period);
        if (inWindow > settings.Intensity)
            return new RestartDecision.GiveUp(
                $"start limit hit: {inWindow} unexpected stops within {settings.Period.TotalSeconds:0}s (intensity {settings.Intensity})");

        var attempt = qube.ConsecutiveRestarts + 1;
        return new RestartDecision.RestartAfter(attempt, Backoff(settings, attempt, jitterSample));
    }

    /// <summary>min · 2^(attempt-1), capped at max, then ± jitter.</summary>
    public static TimeSpan Backoff(RestartSettings settings, int attempt, double jitterSample)
    {
        var exponent = Math.Min(attempt - 1, 30);
        var raw = Math.Min(settings.BackoffMin.TotalMilliseconds * Math.Pow(2, exponent), settings.BackoffMax.TotalMilliseconds);
        var factor = 1 + settings.Jitter * (2 * jitterSample - 1);
        return TimeSpan.FromMilliseconds(Math.Max(0, raw * factor));
    }
}
