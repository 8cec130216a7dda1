using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using QubesActors.Audit.Journal;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Audit.Verify;

/// <summary><c>qubes-audit verify</c>: every stream's chain, the seals over the global order, an optional anchor.</summary>
public static class VerifyCommand
{
    public static Command Create(AuditContext context)
    {
        var anchor = new Option<string?>("--anchor")
        {
            Description = "ORDERING:DIGEST printed by an earlier verify and kept elsewhere: the journal up to ORDERING must still fold to DIGEST.",
        };
        var output = new Option<string>("--output", "-o") { Description = "Output format.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "json");
        var command = new Command("verify",
            "Check the journal: every stream's hash chain, the seals over the global order; the first broken or missing link of each stream. Exit 1 if any.")
        {
            anchor, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            JournalVerifier.Anchor? expected = null;
            if (parse.GetValue(anchor) is { } text && !JournalVerifier.Anchor.TryParse(text, out expected))
            {
                await context.Error.WriteLineAsync($"qubes-audit verify: error: --anchor must be ORDERING:DIGEST (64 hex digits), not '{TerminalText.Escape(text)}'");
                return AuditApp.ExitUsage;
            }
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
            VerifyReport report;
            try
            {
                report = await Task.Run(() => Run(settings.Journal, expected, ct), ct);
            }
            catch (JournalNotFoundException e)
            {
                await context.Error.WriteLineAsync($"qubes-audit: {e.Message}");
                return AuditApp.ExitError;
            }
            catch (System.Data.Common.DbException e)
            {
                await context.Error.WriteLineAsync($"qubes-audit: cannot read the journal: {TerminalText.Escape(e.Message)}");
                return AuditApp.ExitError;
            }
            if (parse.GetValue(output) == "json")
                WriteJson(context.Writer, report);
            else
                WriteText(context.Writer, report);
            return report.Ok ? AuditApp.ExitOk : AuditApp.ExitError;
        });
        return command;
    }

    public static VerifyReport Run(JournalSettings settings, JournalVerifier.Anchor? anchor, CancellationToken ct)
    {
        using var journal = RawJournal.Open(settings);
        journal.BeginSnapshot();
        var verifier = new JournalVerifier(journal.Stream(JournalSealed.PersistenceId).ToList(), anchor);
        var n = 0;
        foreach (var row in journal.All())
        {
            if ((++n & 0xffff) == 0)
                ct.ThrowIfCancellationRequested();
            verifier.Add(row);
        }
        return verifier.Finish();
    }

    private static void WriteText(TextWriter w, VerifyReport r)
    {
        foreach (var p in r.Problems)
            w.WriteLine($"BROKEN  {Stream(p.PersistenceId, p.Qube)}  event {p.SequenceNr}: {TerminalText.Escape(p.Problem)}");
        foreach (var s in r.SealProblems)
            w.WriteLine($"BROKEN  seal {s.SealSequenceNr} of {AuditDetails.FormatTime(s.SealedAt)} (orderings {s.FromOrdering + 1}..{s.ToOrdering}): {s.Problem}");
        if (r.AnchorProblem is not null)
            w.WriteLine($"BROKEN  anchor: {r.AnchorProblem}");
        w.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{r.Events:N0} events in {r.StreamCount:N0} streams; {r.Problems.Length} broken stream(s), {r.SealProblems.Length} broken seal(s)"));
        if (r.Seals == 0)
            w.WriteLine("no seal yet: only the streams' chains were checked (qubesd seals the journal every second while it runs)");
        else
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Seals:N0} seals, the last of {AuditDetails.FormatTime(r.LastSealTime!.Value)} up to ordering {r.SealedUpTo}; anchor: {r.SealedUpTo}:{r.SealedDigest}"));
        if (r.UnsealedEvents > 0)
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.UnsealedEvents:N0} event(s) after the last seal (from {(r.FirstUnsealedTime is { } t ? AuditDetails.FormatTime(t) : "?")}): vouched for by their chains only, not yet by a seal (qubesd seals them within a second while it runs, or at its next start)"));
        w.WriteLine(r.Ok ? "OK" : "FAILED");
    }

    private static string Stream(string pid, string? qube) => qube is null ? TerminalText.Escape(pid) : $"{TerminalText.Escape(pid)} ({TerminalText.Escape(qube)})";

    private static void WriteJson(TextWriter w, VerifyReport r)
    {
        var json = JsonSerializer.Serialize(new
        {
            ok = r.Ok,
            events = r.Events,
            streams = r.StreamCount,
            seals = r.Seals,
            sealed_up_to = r.SealedUpTo,
            anchor = r.Seals == 0 ? null : $"{r.SealedUpTo}:{r.SealedDigest}",
            unsealed_events = r.UnsealedEvents,
            broken_streams = r.Problems.Select(p => new { persistence_id = p.PersistenceId, qube = p.Qube, sequence_nr = p.SequenceNr, problem = p.Problem }),
            broken_seals = r.SealProblems.Select(s => new { seal = s.SealSequenceNr, from_ordering = s.FromOrdering, to_ordering = s.ToOrdering, sealed_at = s.SealedAt, problem = s.Problem }),
            anchor_problem = r.AnchorProblem,
        }, new JsonSerializerOptions { WriteIndented = true });
        w.WriteLine(json);
    }
}
