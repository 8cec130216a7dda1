using System.Text.Json;
using Microsoft.Data.Sqlite;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>
/// <c>qubes-audit verify</c> on the journal a real qubesd wrote (and sealed), then on copies of it edited the way
/// someone with the database file could: a row modified, deleted or moved, in the middle or at the head of a stream.
/// </summary>
public sealed class AuditVerifyTests(AuditJournalFixture journal) : IClassFixture<AuditJournalFixture>
{
    private const string AuditedPid = "(SELECT persistence_id FROM journal WHERE manifest = 'qube.created.v1' AND CAST(message AS TEXT) LIKE '%\"name\":\"audited\"%')";

    [Fact]
    public async Task The_journal_qubesd_wrote_verifies_and_its_seals_cover_everything_qubesd_wrote()
    {
        var result = await AuditRunner.RunAsync(journal.StateDir, "verify");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("0 broken stream(s), 0 broken seal(s)", result.Out);
        Assert.EndsWith("OK\n", result.Out);
        Assert.Matches(@"\d+ seals, the last of .* up to ordering \d+; anchor: \d+:[0-9a-f]{64}", result.Out);
        // Only the two rows the fixture inserted after qubesd stopped are not sealed: qubesd sealed all of its own.
        Assert.Contains("2 event(s) after the last seal", result.Out);
    }

    [Fact]
    public async Task A_modified_row_in_the_middle_of_a_stream_breaks_the_link_of_the_next_event()
    {
        var result = await VerifyEdited($"UPDATE journal SET message = CAST(replace(CAST(message AS TEXT), '\"memory\"', '\"maxmem\"') AS BLOB) WHERE persistence_id = {AuditedPid} AND manifest = 'qube.property-set.v1'");
        Assert.Equal(1, result.ExitCode);
        // Found by the next event's link, or, when a seal ended right after it, by that seal's head: both name the row.
        Assert.Matches(@"BROKEN  qube-[0-9a-f-]+ \(audited\)  event \d+: event \d+ (\(.*\) does not link to event \d+: one of them was modified|was modified after the seal of )", result.Out);
        Assert.EndsWith("FAILED\n", result.Out);
    }

    [Fact]
    public async Task A_modified_newest_event_of_a_stream_is_caught_by_the_seal()
    {
        var result = await VerifyEdited($"UPDATE journal SET message = CAST(replace(CAST(message AS TEXT), '2026', '2025') AS BLOB) WHERE persistence_id = {AuditedPid} AND sequence_number = (SELECT MAX(sequence_number) FROM journal WHERE persistence_id = {AuditedPid})");
        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"BROKEN  qube-[0-9a-f-]+ \(audited\)  event (\d+): event \1 was modified after the seal of ", result.Out);
    }

    [Fact]
    public async Task A_deleted_newest_event_of_a_stream_is_missing_at_the_seal()
    {
        var result = await VerifyEdited($"DELETE FROM journal WHERE persistence_id = {AuditedPid} AND sequence_number = (SELECT MAX(sequence_number) FROM journal WHERE persistence_id = {AuditedPid})");
        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"BROKEN  qube-[0-9a-f-]+ \(audited\)  event (\d+): event \1 is missing \(deleted\): the seal of .* recorded it as the stream's newest", result.Out);
    }

    [Fact]
    public async Task A_deleted_row_in_the_middle_of_a_stream_is_a_missing_sequence_number()
    {
        var result = await VerifyEdited($"DELETE FROM journal WHERE persistence_id = {AuditedPid} AND sequence_number = 2");
        Assert.Equal(1, result.ExitCode);
        // Found when event 3 follows event 1, or earlier when a seal recorded event 2 as the newest: both name it.
        Assert.Matches(@"\(audited\)  event 2: event 2 is missing \(deleted\)(; event 3 follows event 1|: the seal of .* recorded it as the stream's newest)", result.Out);
    }

    [Fact]
    public async Task Two_events_of_a_stream_swapped_in_the_chain_break_it()
    {
        // The payloads of events 2 and 3 change places: same rows, same sequence numbers, another order of facts.
        var result = await VerifyEdited($"""
            UPDATE journal SET message = CASE sequence_number
                WHEN 2 THEN (SELECT message FROM journal WHERE persistence_id = {AuditedPid} AND sequence_number = 3)
                ELSE (SELECT message FROM journal WHERE persistence_id = {AuditedPid} AND sequence_number = 2) END
            WHERE persistence_id = {AuditedPid} AND sequence_number IN (2, 3)
            """);
        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"\(audited\)  event 2: event 2 \(.*\) does not link to event 1", result.Out);
    }

    [Fact]
    public async Task Two_events_of_a_stream_moved_in_the_global_order_are_reported_as_reordered()
    {
        var result = await VerifyEdited(db =>
        {
            var second = Scalar(db, $"SELECT ordering FROM journal WHERE persistence_id = {AuditedPid} AND sequence_number = 2");
            var third = Scalar(db, $"SELECT ordering FROM journal WHERE persistence_id = {AuditedPid} AND sequence_number = 3");
            Exec(db, $"UPDATE journal SET ordering = -1 WHERE ordering = {second}; UPDATE journal SET ordering = {second} WHERE ordering = {third}; UPDATE journal SET ordering = {third} WHERE ordering = -1");
        });
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("(audited)  event 2: event 2 (", result.Out);
        Assert.Contains("comes after event 3 in the global order: the rows were reordered", result.Out);
    }

    [Fact]
    public async Task Rows_of_different_streams_swapped_in_the_global_order_break_the_seal()
    {
        // Each stream is intact on its own; only the seal's fold over the global order can tell.
        var result = await VerifyEdited(db =>
        {
            // Two neighbours in the global order from different streams, not on either side of a seal's end: swapping
            // them keeps each stream's own order and every seal's heads.
            var sealEnds = new HashSet<long>();
            using (var seals = db.CreateCommand())
            {
                seals.CommandText = "SELECT manifest, message FROM journal WHERE persistence_id = 'journal-seals'";
                using var reader = seals.ExecuteReader();
                while (reader.Read())
                    sealEnds.Add(((QubesActors.Runtime.Persistence.JournalSealed)QubesActors.Runtime.Persistence.EventCodec.Decode((byte[])reader.GetValue(1), reader.GetString(0))).ToOrdering);
            }
            var first = Scalar(db, $"SELECT a.ordering FROM journal a JOIN journal b ON b.ordering = a.ordering + 1 WHERE a.persistence_id <> b.persistence_id AND a.ordering NOT IN ({string.Join(", ", sealEnds.Append(-1))}) ORDER BY a.ordering LIMIT 1");
            var other = first + 1;
            Exec(db, $"UPDATE journal SET ordering = -1 WHERE ordering = {first}; UPDATE journal SET ordering = {first} WHERE ordering = {other}; UPDATE journal SET ordering = {other} WHERE ordering = -1");
        });
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("0 broken stream(s), 1 broken seal(s)", result.Out);
        Assert.Matches(@"BROKEN  seal \d+ of .* \(orderings \d+\.\.\d+\): the rows in its range no longer fold to its digest", result.Out);
    }

    [Fact]
    public async Task A_stream_head_moved_past_the_end_of_its_seal_is_reported_as_moved()
    {
        var result = await VerifyEdited(db =>
        {
            // The newest event of "audited" (sealed: qubesd sealed everything it wrote), moved after every other row.
            var head = Scalar(db, $"SELECT ordering FROM journal WHERE persistence_id = {AuditedPid} ORDER BY sequence_number DESC LIMIT 1");
            var last = Scalar(db, "SELECT MAX(ordering) FROM journal");
            Exec(db, $"UPDATE journal SET ordering = {last + 1} WHERE ordering = {head}");
        });
        Assert.Equal(1, result.ExitCode);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(result.Out,
            @"BROKEN  qube-[0-9a-f-]+ \(audited\)  event (\d+): event \1 \(qube\.stopped\.v1\) comes after the seal of .* that recorded it: it was moved in the global order"), result.ToString());
    }

    [Fact]
    public async Task An_anchor_kept_from_an_earlier_run_still_verifies_and_catches_a_later_rewrite()
    {
        var first = await AuditRunner.RunAsync(journal.StateDir, "verify", "-o", "json");
        Assert.Equal(0, first.ExitCode);
        using var report = JsonDocument.Parse(first.Out);
        Assert.True(report.RootElement.GetProperty("ok").GetBoolean());
        var anchor = report.RootElement.GetProperty("anchor").GetString()!;
        Assert.Equal(0, (await AuditRunner.RunAsync(journal.StateDir, "verify", "--anchor", anchor)).ExitCode);

        // A rewrite of the first event that also rewrites every seal could pass the seals, not the anchor kept elsewhere.
        var edited = await VerifyEdited("UPDATE journal SET message = CAST(replace(CAST(message AS TEXT), '2026', '2025') AS BLOB) WHERE ordering = 1", "--anchor", anchor);
        Assert.Equal(1, edited.ExitCode);
        Assert.Contains("BROKEN  anchor: the journal up to ordering", edited.Out);

        var bad = await AuditRunner.RunAsync(journal.StateDir, "verify", "--anchor", "12:nothex");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--anchor must be ORDERING:DIGEST", bad.Err);
    }

    [Fact]
    public async Task A_row_that_is_not_an_event_any_more_is_reported_and_the_json_report_names_it()
    {
        var result = await VerifyEdited($"UPDATE journal SET message = X'7b2262726f6b656e' WHERE persistence_id = {AuditedPid} AND sequence_number = 2", "-o", "json");
        Assert.Equal(1, result.ExitCode);
        using var report = JsonDocument.Parse(result.Out);
        var broken = Assert.Single(report.RootElement.GetProperty("broken_streams").EnumerateArray());
        Assert.Equal("audited", broken.GetProperty("qube").GetString());
        Assert.Equal(2, broken.GetProperty("sequence_nr").GetInt64());
        Assert.Contains("cannot be read (modified)", broken.GetProperty("problem").GetString());
    }

    private Task<AuditResult> VerifyEdited(string sql, params string[] args) =>
        VerifyEdited(db => Assert.True(Exec(db, sql) > 0, "the edit changed nothing"), args);

    /// <summary>Runs verify on an edited copy (the backup API copies the rows still in the WAL, which a file copy would miss).</summary>
    private async Task<AuditResult> VerifyEdited(Action<SqliteConnection> edit, params string[] args)
    {
        var copy = journal.StateDir + "-verify-" + Guid.NewGuid().ToString("N")[..6];
        Directory.CreateDirectory(copy);
        try
        {
            using (var source = new SqliteConnection($"Data Source={Path.Combine(journal.StateDir, "journal.db")};Mode=ReadOnly;Pooling=False"))
            using (var db = new SqliteConnection($"Data Source={Path.Combine(copy, "journal.db")};Pooling=False"))
            {
                source.Open();
                db.Open();
                source.BackupDatabase(db);
                edit(db);
            }
            return await AuditRunner.RunAsync(copy, ["verify", .. args]);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(copy, recursive: true);
        }
    }

    private static int Exec(SqliteConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
