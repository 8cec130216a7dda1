using System.Data.Common;
using QubesActors.Core.Events;

namespace QubesActors.Runtime.Persistence;

/// <summary>One stream as read back: its events, the head of its chain, and why it cannot be trusted, if so.</summary>
public sealed record LoadedStream(string PersistenceId, IReadOnlyList<DomainEvent> Events, long LastSequenceNr, string LastHash, string? Broken)
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
    public static LoadedJournal Load(JournalSettings settings)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        settings.EnsureStorage();
        using var connection = settings.OpenConnection();
        if (!JournalTableExists(connection, settings.Provider))
            return LoadedJournal.Empty;

        using var command = connection.CreateCommand();
        command.CommandText = "SELECT persistence_id, sequence_number, manifest, message FROM journal ORDER BY persistence_id, sequence_number";
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
        var streams = new LoadedStream[raw.Count];
        Parallel.For(0, raw.Count, i =>
        {
            var chain = new ChainBuilder(raw[i].Pid);
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
    private static byte[] PayloadBytes(object value) => value switch
    {
        byte[] bytes => bytes,
        DBNull => [],
        _ => System.Text.Encoding.UTF8.GetBytes(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
    };

    private static bool JournalTableExists(DbConnection connection, JournalProvider provider)
    {
        using var command = connection.CreateCommand();
        command.CommandText = provider == JournalProvider.Sqlite
            ? "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='journal'"
            : "SELECT count(*) FROM information_schema.tables WHERE table_name='journal' AND table_schema=current_schema()";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>Verifies one stream link by link: contiguous sequence numbers, known manifests, matching hashes.</summary>
    public sealed class ChainBuilder(string persistenceId)
    {
        private readonly List<DomainEvent> _events = [];
        private long _lastSeq;
        private string _lastHash = "";
        private string? _broken;

        public string PersistenceId { get; } = persistenceId;

        public void Add(long sequenceNr, string manifest, byte[] payload)
        {
            if (_broken is not null)
                return;
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

        public LoadedStream Finish() => new(PersistenceId, _events, _lastSeq, _lastHash, _broken);
    }
}
