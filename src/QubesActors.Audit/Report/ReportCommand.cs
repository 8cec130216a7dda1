using System.CommandLine;
using QubesActors.Audit.Journal;
using QubesActors.Audit.Timeline;

namespace QubesActors.Audit.Report;

/// <summary><c>qubes-audit report --html FILE</c>: one self-contained HTML timeline of every qube.</summary>
public static class ReportCommand
{
    public static Command Create(AuditContext context)
    {
        var html = new Option<string>("--html") { Description = "Write the report to this HTML file (self-contained: opens without network access).", Required = true };
        var since = new Option<string?>("--since", "-S") { Description = "From this time (same forms as log --since)." };
        var until = new Option<string?>("--until", "-U") { Description = "Up to this time (same forms as log --since)." };
        var command = new Command("report", "A timeline of all qubes as one HTML file: a lane per qube in its label colour, power-state spans, crash, restart and denial markers.")
        {
            html, since, until,
        };
        command.SetAction(async (parse, ct) =>
        {
            var now = DateTimeOffset.UtcNow;
            DateTimeOffset? from, to;
            try
            {
                from = JournalRun.Time(parse.GetValue(since), "--since", now);
                to = JournalRun.Time(parse.GetValue(until), "--until", now);
            }
            catch (FormatException e)
            {
                await context.Error.WriteLineAsync($"qubes-audit report: error: {e.Message}");
                return AuditApp.ExitUsage;
            }
            var path = parse.GetValue(html)!;
            return await JournalRun.RunAsync(context, parse, async journal =>
            {
                var builder = new ReportBuilder(from, to);
                long events = 0;
                await foreach (var e in journal.CurrentAllAsync(ct))
                {
                    builder.Add(e);
                    events++;
                }
                try
                {
                    // Written next to the target and renamed: a browser never sees half a report.
                    var temporary = path + ".tmp";
                    await using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                        ReportHtml.Write(file, builder, now);
                    File.Move(temporary, path, overwrite: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    await context.Error.WriteLineAsync($"qubes-audit: cannot write {TerminalText.Escape(path)}: {TerminalText.Escape(e.Message)}");
                    return AuditApp.ExitError;
                }
                await context.Writer.WriteLineAsync($"wrote {TerminalText.Escape(path)}: {builder.Lanes.Count} qubes, {events} events read");
                return AuditApp.ExitOk;
            });
        });
        return command;
    }
}
