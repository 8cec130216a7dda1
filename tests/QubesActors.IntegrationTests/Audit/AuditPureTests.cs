using QubesActors.Audit.Journal;
using QubesActors.Audit.Log;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>The pure pieces of qubes-audit: terminal escaping, CSV fields, times.</summary>
public sealed class AuditPureTests
{
    [Theory]
    [InlineData("work", "work")]
    [InlineData("\u001b[31mx", @"\x1b[31mx")]
    [InlineData("a\r\nb\tc", @"a\x0d\x0ab\x09c")]
    [InlineData("\u009b2J\u007f", @"\x9b2J\x7f")]
    [InlineData(@"\x1b", @"\\x1b")] // a literal backslash cannot forge an escape
    [InlineData("abc\u202edef", @"abc\u202edef")] // bidi override
    [InlineData("line\u2028para\u2029", @"line\u2028para\u2029")] // Unicode line and paragraph separators
    [InlineData("[red]markup[/]", "[red]markup[/]")]
    [InlineData("", "")]
    public void Terminal_text_escapes_control_characters(string untrusted, string shown) =>
        Assert.Equal(shown, TerminalText.Escape(untrusted));

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a,b", "\"a,b\"")]
    [InlineData("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [InlineData("=cmd()", "'=cmd()")]
    [InlineData("-1+1", "'-1+1")]
    [InlineData("line\nbreak", @"line\x0abreak")]
    public void Csv_fields_are_quoted_escaped_and_never_formulas(string untrusted, string field) =>
        Assert.Equal(field, LogFormat.Csv(untrusted));

    [Theory]
    [InlineData("2h", "2026-11-27T06:00:00Z")]
    [InlineData("30m", "2026-11-27T07:30:00Z")]
    [InlineData("3d", "2026-11-24T08:00:00Z")]
    [InlineData("1w", "2026-11-20T08:00:00Z")]
    [InlineData("45s ago", "2026-11-27T07:59:15Z")]
    [InlineData("today", "2026-11-27T00:00:00Z")]
    [InlineData("yesterday", "2026-11-26T00:00:00Z")]
    [InlineData("now", "2026-11-27T08:00:00Z")]
    [InlineData("2026-11-01T10:00", "2026-11-01T10:00:00Z")]
    [InlineData("2026-11-01T10:00+02:00", "2026-11-01T08:00:00Z")]
    public void Times_are_relative_named_or_absolute_utc(string text, string expected)
    {
        var now = DateTimeOffset.Parse("2026-11-27T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(TimeSpec.TryParse(text, now, out var time));
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), time);
    }

    [Theory]
    [InlineData("2x")]
    [InlineData("soon")]
    [InlineData("")]
    public void Other_times_are_refused(string text) =>
        Assert.False(TimeSpec.TryParse(text, DateTimeOffset.UnixEpoch, out _));

    [Theory]
    [InlineData("dom0", "dom0", true)]
    [InlineData("dom0 (uid=0 pid=1)", "dom0", true)]
    [InlineData("dom0 (uid=0 pid=1)", "dom0 (uid=0 pid=1)", true)]
    [InlineData("dom0x", "dom0", false)]
    [InlineData(null, "dom0", false)]
    public void Caller_matches_the_name_or_the_whole_record(string? recorded, string wanted, bool matches) =>
        Assert.Equal(matches, LogFilter.CallerMatches(recorded, wanted));
}
