using System.Runtime.CompilerServices;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Microsoft.Data.Sqlite;
using QubesActors.Core.Events;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Audit.Journal;

/// <summary>A row the runtime's codec cannot decode (edited by hand?): skipped, and reported.</summary>
public sealed record UnreadableRow(long Ordering, string PersistenceId, long SequenceNr, string Manifest, string Error);

/// <summary>
/// Reads qubesd's journal, read-only, from the same settings as qubesd (SQLite opened with <c>Mode=ReadOnly</c>, WAL
/// lets it read while qubesd writes; PostgreSQL sessions in read-only transactions). What is already persisted is read
/// with one SQL statement per question and decoded by the runtime's own codec (EventCodec), as qubesd's recovery
/// reads it; new events (<c>--follow</c>) come from Akka.Persistence.Query's live <c>AllEvents</c> query of the SQL
/// read journal, which polls and waits out gaps in the ordering. Why not the read journal for history too: its current
/// queries cost about 2 s before the first event (actor system, linq2db's first query, the sequence actor) and a
/// round trip per 500 events, 4.7 s for one qube's events in 100,000 (docs/audit-verify.md has the figures).
/// </summary>
public sealed class JournalReader : IAsyncDisposable
{
    private readonly JournalSettings _readOnly;
    private readonly RawJournal _raw;
    private readonly List<UnreadableRow> _unreadable = [];
    private ActorSystem? _live;
    private Task<SqlReadJournal>? _liveJournal;

    private JournalReader(JournalSettings readOnly)
    {
        _readOnly = readOnly;
        _raw = new RawJournal(readOnly);
    }

    /// <summary>Opens the journal; fails with <see cref="JournalNotFoundException"/> when there is none yet.</summary>
    public static JournalReader Open(JournalSettings settings) => new(ReadOnly(settings));

    /// <summary>Rows skipped so far because they cannot be decoded.</summary>
    public IReadOnlyList<UnreadableRow> Unreadable => _unreadable;

    /// <summary>
    /// SQLite: the file must exist (a read-only open never creates it) and is opened read-only. PostgreSQL: every
    /// transaction of the session is read-only, so the server refuses a write whatever issues it.
    /// </summary>
    internal static JournalSettings ReadOnly(JournalSettings settings)
    {
        if (settings.Provider == JournalProvider.PostgreSql)
        {
            var pg = new Npgsql.NpgsqlConnectionStringBuilder(settings.ConnectionString);
            if (pg.Options?.Contains("default_transaction_read_only", StringComparison.Ordinal) != true)
                pg.Options = $"{pg.Options} -c default_transaction_read_only=on".Trim();
            return settings with { ConnectionString = pg.ToString() };
        }
        var builder = new SqliteConnectionStringBuilder(settings.ConnectionString) { Mode = SqliteOpenMode.ReadOnly };
        if (!File.Exists(builder.DataSource))
            throw new JournalNotFoundException($"no journal at {builder.DataSource} (has qubesd run with this state directory?)");
        return settings with { ConnectionString = builder.ToString() };
    }

    internal static Config Config(JournalSettings readOnly) =>
        ConfigurationFactory.ParseString("""
            akka {
              # Akka's logger writes to stdout, which is the viewer's output (JSON, CSV): failures surface as exceptions.
              loglevel = OFF
              stdout-loglevel = OFF
              log-dead-letters = off
              log-config-on-start = off
              # The query plugin looks up the write plugin's event adapters, which starts it: it must not create tables.
              persistence.journal.sql.auto-initialize = off
              persistence.snapshot-store.sql.auto-initialize = off
              coordinated-shutdown.run-by-clr-shutdown-hook = off
              # --follow: a new row waits for the max-ordering poll, then the events poll; 100 ms each keeps it
              # well under the issue's 500 ms (two cheap indexed queries per poll).
              persistence.query.journal.sql {
                refresh-interval = 100ms
                journal-sequence-retrieval.query-delay = 100ms
                # The sequence actor learns the highest ordering from 0 up, one batch per query, before the live
                # query sees anything: 10,000 a batch is 100 queries for a million rows, 100,000 is 10.
                journal-sequence-retrieval.batch-size = 100000
              }
            }
            """).WithFallback(RuntimeConfig.For(readOnly));

    /// <summary>Every event persisted so far, in the global order (the journal's ordering column).</summary>
    public IAsyncEnumerable<AuditEvent> CurrentAllAsync(CancellationToken ct = default) => CurrentAllAsync(0, null, ct);

    /// <summary>Every event persisted so far with an ordering above <paramref name="after"/>, in the global order.</summary>
    /// <param name="names">The names of the qube streams (RawJournal.QubeNames); read here when null and starting mid-journal.</param>
    public IAsyncEnumerable<AuditEvent> CurrentAllAsync(long after, IReadOnlyDictionary<string, string>? names, CancellationToken ct = default) =>
        Build(_raw.After(after), names ?? (after > 0 ? _raw.QubeNames() : null), ct);

    /// <summary>
    /// Every event persisted so far that concerns one of <paramref name="qubes"/>, in the global order: the streams
    /// created under those names (a name created, removed and created again has several) and the policy decisions
    /// naming one as source or target (tag <c>qube:NAME</c>), without reading the rest of the journal.
    /// </summary>
    public IAsyncEnumerable<AuditEvent> CurrentOfQubesAsync(IReadOnlyCollection<string> qubes, CancellationToken ct = default)
    {
        var names = _raw.QubeNames();
        var wanted = qubes.ToHashSet(StringComparer.Ordinal);
        var pids = names.Where(n => wanted.Contains(n.Value)).Select(n => n.Key).ToList();
        return Build(_raw.OfQubes(pids, wanted), names, ct, e => e.Qubes.Any(wanted.Contains));
    }

    /// <summary>One stream's events, in order (e.g. the collection's, for the global properties at a time).</summary>
    public IAsyncEnumerable<AuditEvent> CurrentOfStreamAsync(string persistenceId, CancellationToken ct = default) =>
        Build(_raw.Stream(persistenceId), null, ct);

    /// <summary>
    /// Starts the live query's machinery (actor system, read journal, its sequence actor catching up with the journal)
    /// in the background, so a follower that first prints history is live as soon as the history is out.
    /// </summary>
    public void PrepareLive() => _liveJournal ??= Task.Run(() =>
    {
        _live = ActorSystem.Create("qubes-audit", Config(_readOnly));
        return PersistenceQuery.Get(_live).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
    });

    /// <summary>As <see cref="CurrentAllAsync(long, IReadOnlyDictionary{string, string}?, CancellationToken)"/>, then each new event as it is persisted.</summary>
    public async IAsyncEnumerable<AuditEvent> AllAsync(long after, IReadOnlyDictionary<string, string>? names,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        PrepareLive();
        var builder = new AuditEventBuilder(names ?? (after > 0 ? _raw.QubeNames() : null));
        var last = after;
        foreach (var row in _raw.After(after))
        {
            ct.ThrowIfCancellationRequested();
            last = row.Ordering;
            if (Decode(row) is { } e)
                yield return builder.Build(row.Ordering, row.PersistenceId, row.SequenceNr, e);
        }
        var journal = await _liveJournal!.WaitAsync(ct).ConfigureAwait(false);
        await foreach (var envelope in journal.AllEvents(Offset.Sequence(last)).RunAsAsyncEnumerable(_live!.Materializer()).WithCancellation(ct))
        {
            // The serializer bound to DomainEvent decodes every row; anything else is not qubesd's.
            if (envelope.Event is DomainEvent e)
                yield return builder.Build(((Sequence)envelope.Offset).Value, envelope.PersistenceId, envelope.SequenceNr, e);
        }
    }

    public IAsyncEnumerable<AuditEvent> AllAsync(CancellationToken ct = default) => AllAsync(0, null, ct);

    /// <summary>The highest ordering persisted so far.</summary>
    public long MaxOrdering() => _raw.MaxOrdering();

    /// <summary>The names of the qube streams created so far.</summary>
    public Dictionary<string, string> QubeNames() => _raw.QubeNames();

    private async IAsyncEnumerable<AuditEvent> Build(IEnumerable<JournalRow> rows, IReadOnlyDictionary<string, string>? names,
        [EnumeratorCancellation] CancellationToken ct, Func<AuditEvent, bool>? keep = null)
    {
        var builder = new AuditEventBuilder(names);
        var n = 0;
        foreach (var row in rows)
        {
            if ((++n & 0x3fff) == 0)
            {
                ct.ThrowIfCancellationRequested();
                await Task.Yield();
            }
            if (Decode(row) is not { } e)
                continue;
            var audit = builder.Build(row.Ordering, row.PersistenceId, row.SequenceNr, e);
            if (keep is null || keep(audit))
                yield return audit;
        }
    }

    private DomainEvent? Decode(JournalRow row)
    {
        try
        {
            return EventCodec.Decode(row.Payload, row.Manifest);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            _unreadable.Add(new UnreadableRow(row.Ordering, row.PersistenceId, row.SequenceNr, row.Manifest, e.Message));
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _raw.Dispose();
        if (_liveJournal is not null)
        {
            try
            {
                await _liveJournal.ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // It failed to start: AllAsync has reported that already.
            }
        }
        if (_live is not null)
            await _live.Terminate().ConfigureAwait(false);
    }
}

public sealed class JournalNotFoundException(string message) : Exception(message);
