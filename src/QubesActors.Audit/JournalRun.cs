using System.CommandLine;
using QubesActors.Audit.Journal;

namespace QubesActors.Audit;

/// <summary>
/// The frame every reading command shares with <c>log</c>: settings as qubesd resolves them, the journal opened
/// read-only, and the same messages and exit codes when the settings, the journal or a row is wrong.
/// </summary>
internal static class JournalRun
{
    public static async Task<int> RunAsync(AuditContext context, ParseResult parse, Func<JournalReader, Task<int>> body)
    {
        Runtime.Settings.DaemonSettings settings;
        try
        {
            settings = AuditApp.Settings(parse, context);
        }
        catch (Exception e) when (AuditApp.IsSettingsError(e))
        {
            await context.Error.WriteLineAsync($"qubes-audit: error: {e.Message}");
            return AuditApp.ExitUsage;
        }
        try
        {
            await using var journal = JournalReader.Open(settings.Journal);
            var exit = await body(journal);
            return await ReportUnreadableAsync(context, journal) && exit == AuditApp.ExitOk ? AuditApp.ExitError : exit;
        }
        catch (JournalNotFoundException e)
        {
            await context.Error.WriteLineAsync($"qubes-audit: {e.Message}");
            return AuditApp.ExitError;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The database itself (unreadable rows are skipped and reported above): no stack trace.
            await context.Error.WriteLineAsync($"qubes-audit: cannot read the journal: {TerminalText.Escape(e.GetBaseException().Message)}");
            if (e.GetBaseException() is System.Text.Json.JsonException)
                await context.Error.WriteLineAsync("qubes-audit: a journal row cannot be decoded (modified?); `qubesd --check` reports which stream");
            return AuditApp.ExitError;
        }
    }

    /// <summary>
    /// Rows that could not be decoded were skipped: say which (on stderr, stdout stays parseable) and that the run is
    /// incomplete. True when there were any.
    /// </summary>
    public static async Task<bool> ReportUnreadableAsync(AuditContext context, JournalReader journal)
    {
        foreach (var row in journal.Unreadable.Take(20))
            await context.Error.WriteLineAsync(
                $"qubes-audit: skipped ordering {row.Ordering} ({TerminalText.Escape(row.PersistenceId)} event {row.SequenceNr}, {TerminalText.Escape(row.Manifest)}): it cannot be decoded (modified?): {TerminalText.Escape(row.Error)}");
        if (journal.Unreadable.Count > 20)
            await context.Error.WriteLineAsync($"qubes-audit: ... and {journal.Unreadable.Count - 20} more rows that cannot be decoded");
        if (journal.Unreadable.Count > 0)
            await context.Error.WriteLineAsync("qubes-audit: `qubes-audit verify` checks the whole journal");
        return journal.Unreadable.Count > 0;
    }

    /// <summary>A time option in the forms of <c>log --since</c>; a bad one is a usage error.</summary>
    public static DateTimeOffset? Time(string? text, string option, DateTimeOffset now) =>
        text is null ? null
        : Log.TimeSpec.TryParse(text, now, out var time) ? time
        : throw new FormatException($"{option}: '{text}' is not a time (ISO-8601, or 30s, 15m, 2h, 3d, 1w, today, yesterday)");
}
