using System.Globalization;
using System.Text.RegularExpressions;

namespace QubesActors.Audit.Log;

/// <summary>
/// A point in time as <c>--since</c>/<c>--until</c> take it: relative to now (<c>30s</c>, <c>15m</c>, <c>2h</c>,
/// <c>3d</c>, <c>1w</c>: that long ago), <c>now</c>, <c>today</c>, <c>yesterday</c> (UTC midnight), or absolute ISO-8601
/// (UTC unless it carries an offset).
/// </summary>
public static partial class TimeSpec
{
    public static bool TryParse(string text, DateTimeOffset now, out DateTimeOffset time)
    {
        text = text.Trim();
        var relative = Relative().Match(text);
        if (relative.Success)
        {
            var n = long.Parse(relative.Groups[1].Value, CultureInfo.InvariantCulture);
            var unit = relative.Groups[2].Value switch
            {
                "s" => TimeSpan.FromSeconds(1),
                "m" or "min" => TimeSpan.FromMinutes(1),
                "h" => TimeSpan.FromHours(1),
                "d" => TimeSpan.FromDays(1),
                _ => TimeSpan.FromDays(7),
            };
            if (n > TimeSpan.MaxValue.Ticks / unit.Ticks || (now - DateTimeOffset.MinValue).Ticks < n * unit.Ticks)
            {
                time = DateTimeOffset.MinValue;
                return true;
            }
            time = now - TimeSpan.FromTicks(n * unit.Ticks);
            return true;
        }
        switch (text.ToLowerInvariant())
        {
            case "now":
                time = now;
                return true;
            case "today":
                time = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
                return true;
            case "yesterday":
                time = new DateTimeOffset(now.UtcDateTime.Date.AddDays(-1), TimeSpan.Zero);
                return true;
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);
    }

    [GeneratedRegex(@"^(\d{1,9})\s*(s|m|min|h|d|w)(?:\s*ago)?$")]
    private static partial Regex Relative();
}
