using System.Data.Common;
using QubesActors.Core.Events;

namespace QubesActors.Runtime.Persistence;

/// <summary>
/// One stream as read back: its snapshot (if recovery started from one), the events after it, the head of its chain,
/// and why it cannot be trusted, if so.
/// </summary>
public sealed record LoadedStream(string PersistenceId, IReadOnlyList<DomainEvent> Events, long LastSequenceNr, string LastHash, string? Broken,
    QubeSnapshot? Snapshot = null)
{
    public bool IsBroken => Broken is not null;
}

public sealed record LoadedJournal(LoadedStream? Collection, IReadOnlyList<LoadedStream> Qubes, TimeSpan Elapsed)
{
    public static LoadedJournal Empty { get; } = new(null, [], TimeSpan.Zero);
    public bool IsEmpty => Collection is null && Qubes.Count == 0;
}

/// <summary>
/// Reads every stream in one query and checks each chain on the way. This replaces per-actor recovery, which costs
/// one round trip per actor (5–6 s for 1,000 actors on SQLite, docs/akka-stack.md §3).
/// </summary>
public static class JournalLoader
{
    // The decision log and the seals grow with use and recover no qube: the bulk read at start skips them.
    private const string NotRecovered = $"('{QubesActors.Runtime.Policy.PolicyDecisionRecorded.PersistenceId}', '{JournalSealed.PersistenceId}')";

    /// <summary>
    /// Reads the journal. With <paramref name="fromSnapshots"/> each qube stream starts at its newest snapshot (the row
    /// at the snapshot's sequence number must still hash to the snapshot's link); without, every chain is walked from
    /// its first event (<c>qubesd --check</c>).
    /// </summary>
    public static LoadedJournal Load(JournalSettings settings, bool fromSnapshots = true)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        settings.EnsureStorage();
        using var connection = settings.OpenConnection();
        if (!TableExists(connection, settings.Provider, "journal"))
            return LoadedJournal.Empty;

        var snapshots = fromSnapshots && TableExists(connection, settings.Provider, "snapshot") ? LatestSnapshots(connection) : [];
        using var command = connection.CreateCommand();
        command.CommandText = snapshots.Count == 0
            ? $"SELECT persistence_id, sequence_number, manifest, message FROM journal WHERE persistence_id NOT IN {NotRecovered} ORDER BY persistence_id, sequence_number"
            : $"""
              SELECT j.persistence_id, j.sequence_number, j.manifest, j.message FROM journal j
              LEFT JOIN (SELECT persistence_id, MAX(sequence_number) AS snap FROM snapshot GROUP BY persistence_id) s
                ON s.persistence_id = j.persistence_id
              WHERE (s.snap IS NULL OR j.sequence_number >= s.snap) AND j.persistence_id NOT IN {NotRecovered}
              ORDER BY j.persistence_id, j.sequence_number
              """;
        using var reader = command.ExecuteReader();

        // Read raw rows in one pass, then decode and verify the streams in parallel: they are independent.
        var raw = new List<(string Pid, List<(long Seq, string Manifest, byte[] Payload)> Rows)>();
        while (reader.Read())
        {
            var pid = reader.GetString(0);
            if (raw.Count == 0 || raw[^1].Pid != pid)
                raw.Add((pid, []));
            raw[^1].Rows.Add((reader.GetInt64(1), reader.IsDBNull(2) ? "" : reader.GetString(2), PayloadBytes(reader.GetValue(3))));
        }
        reader.Close();
        // A snapshot that could not be used: read that stream whole instead (the query skipped its older rows).
        for (var i = 0; i < raw.Count; i++)
            if (snapshots.TryGetValue(raw[i].Pid, out var snapshot) && snapshot is null)
                raw[i] = (raw[i].Pid, ReadWholeStream(connection, raw[i].Pid));
        var streams = new LoadedStream[raw.Count];
        Parallel.For(0, raw.Count, i =>
        {
            var chain = new ChainBuilder(raw[i].Pid, snapshots.GetValueOrDefault(raw[i].Pid));
            // (an unusable snapshot maps to null: that stream was re-read whole above and is verified from its start)
            foreach (var (seq, manifest, payload) in raw[i].Rows)
                chain.Add(seq, manifest, payload);
            streams[i] = chain.Finish();
        });
        LoadedStream? collection = null;
        var qubes = new List<LoadedStream>();
        foreach (var stream in streams)
            Add(stream);
        return new LoadedJournal(collection, qubes, clock.Elapsed);

        void Add(LoadedStream stream)
        {
            if (stream.PersistenceId == JournalSettings.CollectionPersistenceId)
                collection = stream;
            else if (stream.PersistenceId.StartsWith(JournalSettings.QubePersistenceIdPrefix, StringComparison.Ordinal))
                qubes.Add(stream);
        }
    }

    /// <summary>A row edited by hand may hold text instead of a blob; hash what is there, so the edit shows as a broken link.</summary>
    public static byte[] PayloadBytes(object value) => value switch
    {
        byte[] bytes => bytes,
        DBNull => [],
        _ => System.Text.Encoding.UTF8.GetBytes(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
    };

    private static List<(long Seq, string Manifest, byte[] Payload)> ReadWholeStream(DbConnection connection, string persistenceId)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sequence_number, manifest, message FROM journal WHERE persistence_id = @pid ORDER BY sequence_number";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@pid";
        parameter.Value = persistenceId;
        command.Parameters.Add(parameter);
        using var reader = command.ExecuteReader();
        var rows = new List<(long, string, byte[])>();
        while (reader.Read())
            rows.Add((reader.GetInt64(0), reader.IsDBNull(1) ? "" : reader.GetString(1), PayloadBytes(reader.GetValue(2))));
        return rows;
    }

    private static bool TableExists(DbConnection connection, JournalProvider provider, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = provider == JournalProvider.Sqlite
            ? $"SELECT count(*) FROM sqlite_master WHERE type='table' AND name='{table}'"
            : $"SELECT count(*) FROM information_schema.tables WHERE table_name='{table}' AND table_schema=current_schema()";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>The newest snapshot of each qube stream; one that cannot be read is skipped (the stream is then replayed whole).</summary>
    private static Dictionary<string, QubeSnapshot?> LatestSnapshots(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT s.persistence_id, s.sequence_number, s.manifest, s.snapshot FROM snapshot s
            JOIN (SELECT persistence_id, MAX(sequence_number) AS snap FROM snapshot GROUP BY persistence_id) m
              ON m.persistence_id = s.persistence_id AND m.snap = s.sequence_number
            """;
        using var reader = command.ExecuteReader();
        var result = new Dictionary<string, QubeSnapshot?>(StringComparer.Ordinal);
        while (reader.Read())
        {
            var pid = reader.GetString(0);
            QubeSnapshot? snapshot = null;
            try
            {
                if ((reader.IsDBNull(2) ? "" : reader.GetString(2)) == QubeSnapshot.Manifest)
                    snapshot = EventCodec.DecodeSnapshot(PayloadBytes(reader.GetValue(3)));
            }
            catch (Exception ex) when (ex is System.Text.Json.JsonException or NotSupportedException or InvalidOperationException)
            {
                snapshot = null;
            }
            if (snapshot?.State is null)
                snapshot = null;
            // A snapshot that does not say what it claims is not used: the stream is replayed from its start instead.
            result[pid] = snapshot is not null && snapshot.SequenceNr == reader.GetInt64(1) ? snapshot : null;
        }
        return result;
    }

    /// <summary>Verifies one stream link by link: contiguous sequence numbers, known manifests, matching hashes.</summary>
    public sealed class ChainBuilder(string persistenceId, QubeSnapshot? snapshot = null)
    {
        private readonly List<DomainEvent> _events = [];
        private long _lastSeq;
        private string _lastHash = "";
        private string? _broken;
        private bool _anchored = snapshot is null;

        public string PersistenceId { get; } = persistenceId;

        public void Add(long sequenceNr, string manifest, byte[] payload)
        {
            if (_broken is not null)
                return;
            if (!_anchored)
            {
                // The first row read is the snapshot's own event: it must still be the event the snapshot was taken at.
                _anchored = true;
                if (sequenceNr != snapshot!.SequenceNr || EventCodec.Hash(PersistenceId, sequenceNr, manifest, payload) != snapshot.HeadHash)
                {
                    _broken = $"event {snapshot.SequenceNr} does not match the snapshot taken at it: the stream was modified";
                    return;
                }
                _lastSeq = sequenceNr;
                _lastHash = snapshot.HeadHash;
                return;
            }
            if (sequenceNr != _lastSeq + 1)
            {
                _broken = $"sequence number {sequenceNr} follows {_lastSeq}: {sequenceNr - _lastSeq - 1} event(s) missing";
                return;
            }
            DomainEvent e;
            try
            {
                e = EventCodec.Decode(payload, manifest);
            }
            catch (Exception ex) when (ex is System.Text.Json.JsonException or NotSupportedException or InvalidOperationException)
            {
                _broken = $"event {sequenceNr} ({manifest}) cannot be read: {ex.Message}";
                return;
            }
            if (e.PrevHash != _lastHash)
            {
                _broken = $"event {sequenceNr} ({manifest}) does not link to event {_lastSeq}: one of them was modified";
                return;
            }
            _lastHash = EventCodec.Hash(PersistenceId, sequenceNr, manifest, payload);
            _lastSeq = sequenceNr;
            _events.Add(e);
        }

        public LoadedStream Finish() => !_anchored
            ? new(PersistenceId, _events, 0, "", $"event {snapshot!.SequenceNr} of the snapshot is missing", snapshot)
            : new(PersistenceId, _events, _lastSeq, _lastHash, _broken, snapshot);
    }
}
