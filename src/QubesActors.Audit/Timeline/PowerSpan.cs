using QubesActors.Core.Model;

namespace QubesActors.Audit.Timeline;

/// <summary>
/// A stretch of time a qube spent in one power state. <see cref="Open"/>: the state still holds at the end of the
/// journal, so <see cref="End"/> is the moment the timeline was built ("now").
/// </summary>
public sealed record PowerSpan(PowerState State, DateTimeOffset Start, DateTimeOffset End, bool Open)
{
    public TimeSpan Duration => End - Start;

    /// <summary>The duration between the times as shown (ms precision), so that TO - FROM is exactly what is printed.</summary>
    public TimeSpan ShownDuration => Truncate(End) - Truncate(Start);

    private static DateTimeOffset Truncate(DateTimeOffset t) => t.AddTicks(-(t.UtcTicks % TimeSpan.TicksPerMillisecond));

    /// <summary><c>1h 02m 03.456s</c>, <c>4d 01h 00m 00.000s</c>, <c>0.120s</c>: precise to the ms like the times shown.</summary>
    public static string FormatDuration(TimeSpan d)
    {
        if (d < TimeSpan.Zero)
            return "-" + FormatDuration(-d);
        var seconds = $"{d.Seconds}.{d.Milliseconds:000}s";
        if (d.TotalDays >= 1)
            return $"{(int)d.TotalDays}d {d.Hours:00}h {d.Minutes:00}m {d.Seconds:00}.{d.Milliseconds:000}s";
        if (d.TotalHours >= 1)
            return $"{(int)d.TotalHours}h {d.Minutes:00}m {d.Seconds:00}.{d.Milliseconds:000}s";
        if (d.TotalMinutes >= 1)
            return $"{(int)d.TotalMinutes}m {d.Seconds:00}.{d.Milliseconds:000}s";
        return seconds;
    }
}
