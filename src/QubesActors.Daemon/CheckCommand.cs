using System.Text.Json;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Daemon;

/// <summary>
/// <c>qubesd --check</c>: recovers the collection from the journal without starting anything, verifies every
/// chain, prints one row per qube and exits non-zero on any inconsistency.
/// </summary>
public static class CheckCommand
{
    public sealed record QubeRow(string Name, string Class, string Power, string Label, string? Template, string? NetVm,
        long Events, int Starts, bool Failed, string? Quarantine);

    public static int Run(DaemonSettings settings, bool json, TextWriter output)
    {
        // Every chain from its first event, whatever the snapshots say; then the snapshots must agree with the events.
        var journal = JournalLoader.Load(settings.Journal, fromSnapshots: false);
        var recovered = CollectionRecovery.Recover(journal);
        var fromSnapshots = CollectionRecovery.Recover(JournalLoader.Load(settings.Journal, fromSnapshots: true));
        var rows = new List<QubeRow>();
        foreach (var qube in recovered.State.Qubes.Values.OrderBy(q => q.Qid))
        {
            recovered.Streams.TryGetValue(qube.Name, out var stream);
            recovered.Quarantined.TryGetValue(qube.Name, out var reason);
            rows.Add(new QubeRow(qube.Name, qube.Class.ToString(), qube.Power.Wire(), qube.Label,
                recovered.State.Effective(qube, "template"), qube.Class == QubeClass.AdminVM ? null : recovered.State.Effective(qube, "netvm"),
                stream?.LastSequenceNr ?? 0, stream?.Events.Count(e => e is QubeStarting) ?? 0, qube.Failed, reason));
        }
        var problems = recovered.Problems.ToList();
        foreach (var qube in recovered.State.Qubes.Values.Where(q => !recovered.Quarantined.ContainsKey(q.Name)))
        {
            // qubesd may be running and writing: compare only streams that did not move between the two reads.
            if (!recovered.Streams.TryGetValue(qube.Name, out var whole) || !fromSnapshots.Streams.TryGetValue(qube.Name, out var partial)
                || whole.LastSequenceNr != partial.LastSequenceNr)
                continue;
            var other = fromSnapshots.State.Find(qube.Name);
            if (other is null || !EventCodec.EncodeSnapshot(new QubeSnapshot(other, 0, "")).AsSpan()
                    .SequenceEqual(EventCodec.EncodeSnapshot(new QubeSnapshot(qube, 0, ""))))
                problems.Add($"{qube.Name}: its snapshot disagrees with its events{(fromSnapshots.Quarantined.TryGetValue(qube.Name, out var why) ? $" ({why})" : "")}");
        }
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new { qubes = rows, problems, recovery_ms = journal.Elapsed.TotalMilliseconds },
                new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true }));
        }
        else
        {
            // Plain aligned columns (like qvm-ls / column -t): readable in a terminal, a log or a pipe.
            var table = new List<string[]> { new[] { "NAME", "CLASS", "STATE", "LABEL", "TEMPLATE", "NETVM", "EVENTS", "QUARANTINE" } };
            table.AddRange(rows.Select(r => new[]
            {
                r.Name, r.Class, r.Failed ? $"{r.Power}(failed)" : r.Power, r.Label, r.Template ?? "-", r.NetVm ?? "-",
                r.Events.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Quarantine ?? "-",
            }.Select(Escape).ToArray()));
            var widths = Enumerable.Range(0, 8).Select(i => table.Max(row => row[i].Length)).ToArray();
            foreach (var row in table)
                output.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
            foreach (var p in problems)
                output.WriteLine($"error: {p}");
            output.WriteLine(problems.Count == 0
                ? $"ok: {rows.Count} qubes, every chain verified ({journal.Elapsed.TotalMilliseconds:0} ms)"
                : $"{problems.Count} problem(s) found");
        }
        return problems.Count == 0 ? 0 : 1;
    }

    /// <summary>Journal text is untrusted: control characters are shown escaped, never sent to the terminal.</summary>
    private static string Escape(string text) =>
        text.Any(char.IsControl) ? string.Concat(text.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString())) : text;
}
