using System.Runtime.CompilerServices;
using Akka;
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

/// <summary>
/// Reads qubesd's journal through Akka.Persistence.Query (the SQL read journal), configured from the same settings as
/// qubesd. Read-only: SQLite is opened with <c>Mode=ReadOnly</c> (WAL lets it read while qubesd writes) and no plugin
/// may create tables. Events are decoded by the runtime's own serializer (EventCodec) as qubesd's journal is.
/// </summary>
public sealed class JournalReader : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly SqlReadJournal _journal;
    private readonly IMaterializer _materializer;

    private JournalReader(ActorSystem system)
    {
        _system = system;
        _journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        _materializer = system.Materializer();
    }

    /// <summary>Opens the journal; fails with <see cref="JournalNotFoundException"/> when there is none yet.</summary>
    public static JournalReader Open(JournalSettings settings)
    {
        var readOnly = ReadOnly(settings);
        return new JournalReader(ActorSystem.Create("qubes-audit", Config(readOnly)));
    }

    /// <summary>
    /// SQLite: the file must exist (a read-only open never creates it) and is opened read-only. PostgreSQL: every
    /// transaction of the session is read-only, so the server refuses a write whatever issues it.
    /// </summary>
    internal static JournalSettings ReadOnly(JournalSettings settings)
    {
        if (settings.Provider == JournalProvider.PostgreSql)
        {
            var pg = new Npgsql.NpgsqlConnectionStringBuilder(settings.ConnectionString);
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
                # One round trip (an Ask to the sequence actor and a query) per batch: 500 rows is 2,000 for a million.
                max-buffer-size = 10000
              }
            }
            """).WithFallback(RuntimeConfig.For(readOnly));

    /// <summary>Every event persisted so far, in the global order (the journal's ordering column).</summary>
    public IAsyncEnumerable<AuditEvent> CurrentAllAsync(CancellationToken ct = default) => CurrentAllAsync(0, null, ct);

    public IAsyncEnumerable<AuditEvent> AllAsync(CancellationToken ct = default) => AllAsync(0, null, ct);

    /// <summary>Every event persisted so far with an ordering above <paramref name="after"/>, in the global order.</summary>
    /// <param name="names">The qube names of the streams created at or before <paramref name="after"/> (RawJournal.QubeNames).</param>
    public async IAsyncEnumerable<AuditEvent> CurrentAllAsync(long after, IReadOnlyDictionary<string, string>? names,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in Run(_journal.CurrentAllEvents(after == 0 ? Offset.NoOffset() : Offset.Sequence(after)), names, ct))
            yield return e;
    }

    /// <summary>As <see cref="CurrentAllAsync"/>, then each new event as it is persisted (polled every refresh-interval).</summary>
    public async IAsyncEnumerable<AuditEvent> AllAsync(long after, IReadOnlyDictionary<string, string>? names,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in Run(_journal.AllEvents(after == 0 ? Offset.NoOffset() : Offset.Sequence(after)), names, ct))
            yield return e;
    }

    /// <summary>
    /// Every event persisted so far that concerns one of <paramref name="qubes"/> (its own streams, and the policy
    /// decisions naming it as source or target), in the global order, without reading the rest of the journal: the
    /// tag <c>qube:NAME</c> (on a qube's creation and on decisions) finds the decisions and the qube's streams, whose
    /// events are then read by persistence id (indexed). A name created, removed and created again has several streams.
    /// </summary>
    public async IAsyncEnumerable<AuditEvent> CurrentOfQubesAsync(IReadOnlyCollection<string> qubes, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var envelopes = new Dictionary<long, EventEnvelope>();
        var pids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in qubes.Distinct(StringComparer.Ordinal))
            await foreach (var envelope in _journal.CurrentEventsByTag(EventCodec.Tags.QubePrefix + name, Offset.NoOffset())
                               .RunAsAsyncEnumerable(_materializer).WithCancellation(ct))
            {
                envelopes[((Sequence)envelope.Offset).Value] = envelope;
                if (envelope.Event is QubeCreated)
                    pids.Add(envelope.PersistenceId);
            }
        foreach (var pid in pids)
            await foreach (var envelope in _journal.CurrentEventsByPersistenceId(pid, 0, long.MaxValue).RunAsAsyncEnumerable(_materializer).WithCancellation(ct))
                envelopes[((Sequence)envelope.Offset).Value] = envelope;
        var builder = new AuditEventBuilder();
        var wanted = qubes.ToHashSet(StringComparer.Ordinal);
        foreach (var (ordering, envelope) in envelopes.OrderBy(p => p.Key))
            if (envelope.Event is DomainEvent e && builder.Build(ordering, envelope.PersistenceId, envelope.SequenceNr, e) is var audit
                && audit.Qubes.Any(wanted.Contains))
                yield return audit;
    }

    private async IAsyncEnumerable<AuditEvent> Run(Source<EventEnvelope, NotUsed> source, IReadOnlyDictionary<string, string>? names,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var builder = new AuditEventBuilder(names);
        await foreach (var envelope in source.RunAsAsyncEnumerable(_materializer).WithCancellation(ct))
        {
            // The serializer bound to DomainEvent decodes every row; anything else is not qubesd's.
            if (envelope.Event is DomainEvent e)
                yield return builder.Build(((Sequence)envelope.Offset).Value, envelope.PersistenceId, envelope.SequenceNr, e);
        }
    }

    public async ValueTask DisposeAsync() => await _system.Terminate().ConfigureAwait(false);
}

public sealed class JournalNotFoundException(string message) : Exception(message);
