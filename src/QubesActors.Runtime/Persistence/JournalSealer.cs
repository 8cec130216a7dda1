using System.Data.Common;
using Akka.Actor;
using Akka.Event;
using QubesActors.Core.Events;

namespace QubesActors.Runtime.Persistence;

/// <summary>
/// Seals the journal (<see cref="JournalSealed"/>) every <c>interval</c> while rows are being written: it reads the
/// rows persisted since the last seal, folds them, and appends the seal to its own chained stream through the journal
/// protocol. Reading and hashing run off the mailbox; one round at a time. A gap in the ordering (a transaction that
/// has taken an ordering but not committed yet) stops the seal before it until the gap is older than
/// <c>gapTimeout</c> (then it was rolled back).
/// </summary>
public sealed class JournalSealer : ReceiveActor, IWithTimers
{
    /// <summary>Seal now and answer <see cref="SealRoundDone"/> once the rows persisted so far are sealed (or none were).</summary>
    public sealed record SealNow;

    public sealed record SealRoundDone(long ToOrdering);

    private sealed record Tick;
    private sealed record Loaded(SealPosition? Position);
    private sealed record LoadFailed(Exception Cause);
    private sealed record Read(IReadOnlyList<JournalRow> Rows, bool More);
    private sealed record ReadFailed(Exception Cause);

    private const int BatchRows = 20_000;

    private readonly JournalSettings _settings;
    private readonly IActorRef _journal;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _gapTimeout;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<IActorRef> _waiting = [];
    private readonly List<IActorRef> _roundWaiters = [];
    private SealPosition _position = SealPosition.Start;
    private JournalStream? _stream;
    private PendingWrite? _inFlight;
    private SealDraft? _draft;
    private (long Ordering, DateTime Since)? _gap;
    private bool _busy;
    private bool _more;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(JournalSettings settings, IActorRef journal, TimeSpan interval, TimeSpan gapTimeout) =>
        Akka.Actor.Props.Create(() => new JournalSealer(settings, journal, interval, gapTimeout));

    public JournalSealer(JournalSettings settings, IActorRef journal, TimeSpan interval, TimeSpan gapTimeout)
    {
        _settings = settings;
        _journal = journal;
        _interval = interval;
        _gapTimeout = gapTimeout;
        Become(Loading);
    }

    protected override void PreStart() => LoadPosition();

    private void LoadPosition()
    {
        var settings = _settings;
        Task.Run(() => ReadPosition(settings)).PipeTo(Self, success: p => new Loaded(p), failure: e => new LoadFailed(e));
    }

    private void Loading()
    {
        Receive<Loaded>(l =>
        {
            if (l.Position is null)
            {
                // No journal table yet: look again at the next tick.
                Timers.StartSingleTimer("load", new Tick(), _interval);
                return;
            }
            _position = l.Position;
            _stream = new JournalStream(JournalSealed.PersistenceId, l.Position.SealSequenceNr, l.Position.SealLink, _journal);
            Become(Sealing);
            Timers.StartPeriodicTimer("tick", new Tick(), _interval);
            Self.Tell(new Tick());
        });
        Receive<LoadFailed>(f =>
        {
            _log.Error("journal sealer: cannot read the last seal: {0}; retrying in 5 s", f.Cause.GetBaseException().Message);
            Timers.StartSingleTimer("load", new Tick(), TimeSpan.FromSeconds(5));
        });
        Receive<Tick>(_ => LoadPosition());
        Receive<SealNow>(_ => _waiting.Add(Sender));
    }

    private void Sealing()
    {
        Receive<Tick>(_ => StartRound());
        Receive<SealNow>(_ =>
        {
            _waiting.Add(Sender);
            StartRound();
        });
        Receive<Read>(r =>
        {
            _more = r.More;
            _draft = JournalSealing.Draft(_position, r.Rows, GapAccepted, out var gap);
            _gap = gap is { } g ? (_gap?.Ordering == g ? _gap : (g, DateTime.UtcNow)) : null;
            if (_draft is null)
            {
                EndRound();
                return;
            }
            var seal = new JournalSealed(_draft.FromOrdering, _draft.ToOrdering, _draft.Rows, _draft.Digest, _draft.Heads)
            {
                Time = DateTimeOffset.UtcNow,
                Cause = EventCause.System("journal sealer"),
            };
            _inFlight = _stream!.Prepare([seal], Self);
            _stream.Send(_inFlight);
        });
        Receive<ReadFailed>(f =>
        {
            _log.Warning("journal sealer: cannot read the journal: {0}", f.Cause.GetBaseException().Message);
            EndRound();
        });
        Receive<Akka.Persistence.IJournalResponse>(reply =>
        {
            if (_inFlight is not { } write)
                return;
            switch (_stream!.Outcome(reply, write))
            {
                case WriteOutcome.Succeeded:
                    _stream.Commit(write);
                    _position = new SealPosition(_draft!.ToOrdering, _draft.Digest, write.LastSequenceNr, write.LastHash);
                    _inFlight = null;
                    EndRound();
                    break;
                case WriteOutcome.Rejected:
                case WriteOutcome.Failed:
                    // Unknown outcome for a failure: read the seal stream's head again before the next seal.
                    _log.Warning("journal sealer: writing a seal failed: {0}", JournalStream.CauseOf(reply)?.Message);
                    _inFlight = null;
                    _busy = false;
                    _stream = null;
                    Become(Loading);
                    LoadPosition();
                    break;
            }
        });
    }

    private bool GapAccepted(long ordering) => _gap is { } g && g.Ordering == ordering && DateTime.UtcNow - g.Since >= _gapTimeout;

    private void StartRound()
    {
        if (_busy)
            return;
        _busy = true;
        _roundWaiters.AddRange(_waiting);
        _waiting.Clear();
        var settings = _settings;
        var from = _position.ToOrdering;
        Task.Run(() => ReadRows(settings, from)).PipeTo(Self, success: r => r, failure: e => new ReadFailed(e));
    }

    private void EndRound()
    {
        _busy = false;
        _draft = null;
        foreach (var waiter in _roundWaiters)
            waiter.Tell(new SealRoundDone(_position.ToOrdering));
        _roundWaiters.Clear();
        // A backlog larger than one batch: go on at once. Someone who asked meanwhile gets a round of their own.
        if (_more || _waiting.Count > 0)
            StartRound();
    }

    private static Read ReadRows(JournalSettings settings, long after)
    {
        using var connection = settings.OpenConnection();
        var rows = ReadRowsAfter(connection, after, BatchRows);
        return new Read(rows, rows.Count == BatchRows);
    }

    /// <summary>Rows with an ordering above <paramref name="after"/>, in ordering order, as stored.</summary>
    public static List<JournalRow> ReadRowsAfter(DbConnection connection, long after, int limit)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT ordering, persistence_id, sequence_number, manifest, message FROM journal WHERE ordering > {after} ORDER BY ordering LIMIT {limit}";
        using var reader = command.ExecuteReader();
        var rows = new List<JournalRow>();
        while (reader.Read())
            rows.Add(new JournalRow(reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.IsDBNull(3) ? "" : reader.GetString(3),
                JournalLoader.PayloadBytes(reader.GetValue(4))));
        return rows;
    }

    /// <summary>
    /// The index the audit viewer finds a qube's policy decisions by (tag <c>qube:NAME</c> within the decision stream):
    /// with it the tags are checked in the index, not row by row in the table (0.05 s instead of 0.34 s for 200,000
    /// decisions). Created once, beside the plugin's own indexes; the plugin never drops what it did not create.
    /// </summary>
    public const string TagsIndexSql = "CREATE INDEX IF NOT EXISTS journal_persistence_id_tags_idx ON journal (persistence_id, tags)";

    /// <summary>
    /// The last seal: where the next one starts, and the head of the seal stream; null while the journal table does
    /// not exist yet (a first start: the plugin creates it with the first write). Ensures the tags index.
    /// </summary>
    public static SealPosition? ReadPosition(JournalSettings settings)
    {
        using var connection = settings.OpenConnection();
        using (var exists = connection.CreateCommand())
        {
            exists.CommandText = settings.Provider == JournalProvider.Sqlite
                ? "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='journal'"
                : "SELECT count(*) FROM information_schema.tables WHERE table_name='journal' AND table_schema=current_schema()";
            if (Convert.ToInt64(exists.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
                return null;
        }
        JournalSettings.Execute(connection, TagsIndexSql);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT sequence_number, manifest, message FROM journal WHERE persistence_id = '{JournalSealed.PersistenceId}' ORDER BY sequence_number DESC LIMIT 1";
        using var reader = command.ExecuteReader();
        if (!reader.Read())
            return SealPosition.Start;
        var seq = reader.GetInt64(0);
        var manifest = reader.IsDBNull(1) ? "" : reader.GetString(1);
        var payload = JournalLoader.PayloadBytes(reader.GetValue(2));
        var seal = (JournalSealed)EventCodec.Decode(payload, manifest);
        return new SealPosition(seal.ToOrdering, seal.Digest, seq, EventCodec.Hash(JournalSealed.PersistenceId, seq, manifest, payload));
    }
}
