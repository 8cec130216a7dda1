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
            return await body(journal);
        }
        catch (JournalNotFoundException e)
        {
            await context.Error.WriteLineAsync($"qubes-audit: {e.Message}");
            return AuditApp.ExitError;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await context.Error.WriteLineAsync($"qubes-audit: cannot read the journal: {TerminalText.Escape(e.GetBaseException().Message)}");
            if (e.GetBaseException() is System.Text.Json.JsonException)
                await context.Error.WriteLineAsync("qubes-audit: a journal row cannot be decoded (modified?); `qubesd --check` reports which stream");
            return AuditApp.ExitError;
        }
    }

    /// <summary>A time option in the forms of <c>log --since</c>; a bad one is a usage error.</summary>
    public static DateTimeOffset? Time(string? text, string option, DateTimeOffset now) =>
        text is null ? null
        : Log.TimeSpec.TryParse(text, now, out var time) ? time
        : throw new FormatException($"{option}: '{text}' is not a time (ISO-8601, or 30s, 15m, 2h, 3d, 1w, today, yesterday)");
}
