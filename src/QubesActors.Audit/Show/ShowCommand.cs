using System.CommandLine;
using QubesActors.Audit.Journal;
using QubesActors.Audit.Timeline;
using QubesActors.Core.Model;

namespace QubesActors.Audit.Show;

/// <summary><c>qubes-audit show QUBE [--at TIME]</c>: one qube's lives as timelines, or its state at a moment.</summary>
public static class ShowCommand
{
    public static Command Create(AuditContext context)
    {
        var qube = new Argument<string>("QUBE") { Description = "The qube's name (every qube that had this name: each life is shown)." };
        var at = new Option<string?>("--at") { Description = "Show the qube's state at this time instead (same forms as log --since)." };
        var output = new Option<string>("--output", "-o") { Description = "Output format.", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json");
        var command = new Command("show", "A qube's life: creation, power-state spans with durations, restarts and their causes, every change, the policy decisions naming it.")
        {
            qube, at, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var now = DateTimeOffset.UtcNow;
            DateTimeOffset? when;
            try
            {
                when = JournalRun.Time(parse.GetValue(at), "--at", now);
            }
            catch (FormatException e)
            {
                await context.Error.WriteLineAsync($"qubes-audit show: error: {e.Message}");
                return AuditApp.ExitUsage;
            }
            var name = parse.GetValue(qube)!;
            var json = parse.GetValue(output) == "json";
            return await JournalRun.RunAsync(context, parse, journal => when is { } moment
                ? StateAtAsync(context, journal, name, moment, json, ct)
                : HistoryAsync(context, journal, name, now, json, ct));
        });
        return command;
    }

    private static async Task<int> HistoryAsync(AuditContext context, JournalReader journal, string name, DateTimeOffset now, bool json, CancellationToken ct)
    {
        var builder = new QubeHistoryBuilder(name);
        await foreach (var e in journal.CurrentOfQubesAsync([name], ct))
            builder.Add(e);
        var history = builder.Build(now);
        if (history.Lives.Length == 0)
            return await NoSuchQubeAsync(context, name);
        if (json)
            ShowFormat.WriteHistoryJson(context.Writer, history);
        else
            ShowFormat.WriteHistory(context.Writer, history);
        return AuditApp.ExitOk;
    }

    private static async Task<int> StateAtAsync(AuditContext context, JournalReader journal, string name, DateTimeOffset at, bool json, CancellationToken ct)
    {
        var events = await ReadAsync(journal, name, ct);
        if (QubeStateAtBuilder.Replay(events, name, at) is not { } found)
        {
            var history = new QubeHistoryBuilder(name);
            foreach (var e in events)
                history.Add(e);
            var lives = history.Build(at).Lives;
            if (lives.Length == 0)
                return await NoSuchQubeAsync(context, name);
            await context.Error.WriteLineAsync($"qubes-audit: no qube named {TerminalText.Escape(name)} existed at {AuditDetails.FormatTime(at)}; its lives: " +
                                               string.Join(", ", lives.Select(l => $"{AuditDetails.FormatTime(l.Created)} to {(l.Removed is { } r ? AuditDetails.FormatTime(r) : "now")}")));
            return AuditApp.ExitError;
        }
        // Defaults a template gives (memory, vcpus, ...) need the template's own events up to the same moment.
        QubeState? template = null;
        if (found.State.Class.HasTemplate() && found.State.Property("template") is { Length: > 0 } templateName && templateName != name)
            template = QubeStateAtBuilder.Replay(await ReadAsync(journal, templateName, ct), templateName, at)?.State;
        // Defaults from global properties (default_netvm, ...) need the collection's stream up to the same moment.
        var collectionEvents = new List<AuditEvent>();
        await foreach (var e in journal.CurrentOfStreamAsync(Runtime.Persistence.JournalSettings.CollectionPersistenceId, ct))
            collectionEvents.Add(e);
        var state = new QubeStateAt(name, at, found.Life, found.Lives, found.PersistenceId, found.Created, found.State,
            QubeStateAtBuilder.Properties(found.State, template, QubeStateAtBuilder.GlobalsAt(collectionEvents, at)));
        if (json)
            ShowFormat.WriteStateAtJson(context.Writer, state);
        else
            ShowFormat.WriteStateAt(context.Writer, state);
        return AuditApp.ExitOk;
    }

    private static async Task<List<AuditEvent>> ReadAsync(JournalReader journal, string name, CancellationToken ct)
    {
        var events = new List<AuditEvent>();
        await foreach (var e in journal.CurrentOfQubesAsync([name], ct))
            events.Add(e);
        return events;
    }

    private static async Task<int> NoSuchQubeAsync(AuditContext context, string name)
    {
        await context.Error.WriteLineAsync($"qubes-audit: no qube named {TerminalText.Escape(name)} in the journal");
        return AuditApp.ExitError;
    }
}
