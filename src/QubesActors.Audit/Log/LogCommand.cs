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
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events as they are persisted (Ctrl-C ends); first the last 10 matching events, as journalctl -f." };
        var lines = new Option<string?>("--lines", "-n") { Description = "Show only the last N matching events (with --follow: N before following; default 10; 'all' for every one)." };

        var command = new Command("log", "Events in the order they were persisted: time (UTC), qube, event, cause and caller, details.")
        {
            qube, kind, eventName, caller, since, until, grep, output, follow, lines,
        };
        command.SetAction(async (parse, ct) =>
        {
            LogFilter filter;
            int? last;
            try
            {
                var isFollow = parse.GetValue(follow);
                last = parse.GetValue(lines) switch
                {
                    null => isFollow && parse.GetValue(since) is null ? 10 : null,
                    "all" => null,
                    var n when int.TryParse(n, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count) => count,
                    var n => throw new FormatException($"--lines: '{n}' is not a number or 'all'"),
                };
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
            return await RunAsync(context, parse, filter, Enum.Parse<OutputFormat>(parse.GetValue(output)!, ignoreCase: true), parse.GetValue(follow), last, ct);
        });
        return command;
    }

    /// <summary>
    /// The events to print. The history: the given qubes' events (read by tag and stream, not the whole journal), or
    /// every event; only the last <paramref name="last"/> of them when asked (without a qube, read backwards in growing
    /// windows of the global order). With <paramref name="follow"/>, then every matching event persisted after the
    /// history's end.
    /// </summary>
    private static async IAsyncEnumerable<AuditEvent> Select(JournalReader journal, LogFilter filter, bool follow,
        int? last, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        long end = 0;
        IReadOnlyDictionary<string, string>? names = null;
        if (follow)
            journal.PrepareLive();
        if (follow || (last is not null && filter.Qubes.IsEmpty))
        {
            end = journal.MaxOrdering();
            names = journal.QubeNames();
        }
        if (last == 0)
        {
            // No history.
        }
        else if (!filter.Qubes.IsEmpty)
        {
            var history = new List<AuditEvent>();
            await foreach (var e in journal.CurrentOfQubesAsync(filter.Qubes, ct))
                if ((!follow || e.Ordering <= end) && filter.Matches(e))
                {
                    if (last is null && !follow)
                        yield return e;
                    else
                        history.Add(e);
                }
            foreach (var e in last is { } n ? history.TakeLast(n) : history)
                yield return e;
        }
        else if (last is { } n)
        {
            foreach (var e in await LastAsync(journal, filter, n, end, names, ct))
                yield return e;
        }
        else
        {
            await foreach (var e in journal.CurrentAllAsync(0, null, ct))
            {
                if (follow && e.Ordering > end)
                    break;
                if (filter.Matches(e))
                    yield return e;
            }
        }
        if (!follow)
            yield break;
        await foreach (var e in journal.AllAsync(end, names, ct))
            if (filter.Matches(e))
                yield return e;
    }

    /// <summary>The last <paramref name="n"/> matching events up to <paramref name="end"/>: windows of 4x the previous size, newest first.</summary>
    private static async Task<List<AuditEvent>> LastAsync(JournalReader journal, LogFilter filter, int n, long end, IReadOnlyDictionary<string, string>? names,
        CancellationToken ct)
    {
        var found = new List<AuditEvent>();
        long window = Math.Max(1000, n * 20L), upper = end;
        while (found.Count < n && upper > 0)
        {
            var from = Math.Max(0, upper - window);
            var batch = new List<AuditEvent>();
            await foreach (var e in journal.CurrentAllAsync(from, names, ct))
            {
                if (e.Ordering > upper)
                    break;
                if (filter.Matches(e))
                    batch.Add(e);
            }
            found.InsertRange(0, batch);
            upper = from;
            window *= 4;
        }
        return found.Count > n ? found.GetRange(found.Count - n, n) : found;
    }

    private static DateTimeOffset? Time(string? text, string option, DateTimeOffset now) =>
        text is null ? null
        : TimeSpec.TryParse(text, now, out var time) ? time
        : throw new FormatException($"{option}: '{text}' is not a time (ISO-8601, or 30s, 15m, 2h, 3d, 1w, today, yesterday)");

    private static Task<int> RunAsync(AuditContext context, ParseResult parse, LogFilter filter, OutputFormat format, bool follow, int? last, CancellationToken ct) =>
        JournalRun.RunAsync(context, parse, async journal =>
        {
            var writer = new LogFormat(format, context.Writer);
            writer.Begin();
            try
            {
                await foreach (var e in Select(journal, filter, follow, last, ct))
                    writer.Write(e);
            }
            catch (OperationCanceledException) when (follow && ct.IsCancellationRequested)
            {
                // Ctrl-C ends --follow: not an error.
            }
            writer.End();
            return AuditApp.ExitOk;
        });
}
