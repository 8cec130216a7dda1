using System.Collections.Immutable;
using System.CommandLine;
using QubesActors.Audit.Journal;

namespace QubesActors.Audit.Log;

/// <summary><c>qubes-audit log</c>: the journal in global order, filtered, one line per event.</summary>
public static class LogCommand
{
    public static Command Create(AuditContext context)
    {
        var qube = new Option<string[]>("--qube") { Description = "Only events of this qube (repeatable); a policy decision matches its source or target." };
        var kind = new Option<string[]>("--kind") { Description = "Only events of this kind (repeatable): " + string.Join(", ", LogFilter.KnownKinds) + "." };
        kind.AcceptOnlyFromAmong([.. LogFilter.KnownKinds]);
        var eventName = new Option<string[]>("--event") { Description = "Only this event (repeatable): qube.started, started, policy.decided, ..." };
        var caller = new Option<string?>("--caller") { Description = "Only events caused by this caller (an admin call's source qube, a policy client)." };
        var since = new Option<string?>("--since", "-S") { Description = "From this time: ISO-8601 (UTC unless offset given), or 30s, 15m, 2h, 3d, 1w ago, today, yesterday." };
        var until = new Option<string?>("--until", "-U") { Description = "Up to this time (same forms as --since)." };
        var grep = new Option<string?>("--grep", "-g") { Description = "Only events whose line matches this regular expression (case-insensitive unless it has upper case)." };
        var output = new Option<string>("--output", "-o") { Description = "Output format.", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json", "jsonl", "csv");
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events as they are persisted (Ctrl-C ends)." };

        var command = new Command("log", "Events in the order they were persisted: time (UTC), qube, event, cause and caller, details.")
        {
            qube, kind, eventName, caller, since, until, grep, output, follow,
        };
        command.SetAction(async (parse, ct) =>
        {
            LogFilter filter;
            try
            {
                var now = DateTimeOffset.UtcNow;
                filter = new LogFilter(
                    [.. parse.GetValue(qube) ?? []],
                    [.. parse.GetValue(kind) ?? []],
                    [.. parse.GetValue(eventName) ?? []],
                    parse.GetValue(caller),
                    Time(parse.GetValue(since), "--since", now),
                    Time(parse.GetValue(until), "--until", now),
                    parse.GetValue(grep) is { } pattern ? LogFilter.GrepPattern(pattern) : null);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                await context.Error.WriteLineAsync($"qubes-audit log: error: {e.Message}");
                return AuditApp.ExitUsage;
            }
            return await RunAsync(context, parse, filter, Enum.Parse<OutputFormat>(parse.GetValue(output)!, ignoreCase: true), parse.GetValue(follow), ct);
        });
        return command;
    }

    private static DateTimeOffset? Time(string? text, string option, DateTimeOffset now) =>
        text is null ? null
        : TimeSpec.TryParse(text, now, out var time) ? time
        : throw new FormatException($"{option}: '{text}' is not a time (ISO-8601, or 30s, 15m, 2h, 3d, 1w, today, yesterday)");

    private static async Task<int> RunAsync(AuditContext context, ParseResult parse, LogFilter filter, OutputFormat format, bool follow, CancellationToken ct)
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
        var writer = new LogFormat(format, context.Writer);
        try
        {
            await using var journal = JournalReader.Open(settings.Journal);
            writer.Begin();
            var events = follow ? journal.AllAsync(ct) : journal.CurrentAllAsync(ct);
            try
            {
                await foreach (var e in events)
                    if (filter.Matches(e))
                        writer.Write(e);
            }
            catch (OperationCanceledException) when (follow && ct.IsCancellationRequested)
            {
                // Ctrl-C ends --follow: not an error.
            }
            writer.End();
            return AuditApp.ExitOk;
        }
        catch (JournalNotFoundException e)
        {
            await context.Error.WriteLineAsync($"qubes-audit: {e.Message}");
            return AuditApp.ExitError;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The database, or a row the codec cannot read (edited by hand?): the read journal fails the whole stream there,
            // so the events after it are not shown. No stack trace; qubesd --check names the broken stream.
            await context.Error.WriteLineAsync($"qubes-audit: cannot read the journal: {TerminalText.Escape(e.GetBaseException().Message)}");
            if (e.GetBaseException() is System.Text.Json.JsonException)
                await context.Error.WriteLineAsync("qubes-audit: a journal row cannot be decoded (modified?); `qubesd --check` reports which stream");
            return AuditApp.ExitError;
        }
    }
}
