using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using QubesActors.Core.Events;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Runtime.Policy;

/// <summary>
/// Writes decisions to the chained stream <see cref="PolicyDecisionRecorded.PersistenceId"/>, off the decision path:
/// decisions are answered before they are written, and those that arrive while a write is in flight go out together in
/// the next one (one transaction for a burst). At start it reads only the head of the stream (its last event) to
/// continue the chain.
/// </summary>
public sealed class PolicyDecisionLog : ReceiveActor, IWithTimers
{
    private const string Pid = PolicyDecisionRecorded.PersistenceId;
    /// <summary>Above this many waiting decisions the oldest are dropped (and counted) rather than growing without bound.</summary>
    private const int MaxBacklog = 100_000;

    private readonly IActorRef _journal;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<PolicyDecisionRecorded> _waiting = [];
    private JournalStream? _stream;
    private PendingWrite? _inFlight;
    private long _highest;
    private long _dropped;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef journal) => Akka.Actor.Props.Create(() => new PolicyDecisionLog(journal));

    public PolicyDecisionLog(IActorRef journal)
    {
        _journal = journal;
        Become(Recovering);
    }

    protected override void PreStart() => ReadHead();

    // Two steps through the journal protocol: the highest sequence number (replaying nothing), then that one event.
    private void ReadHead()
    {
        _highest = -1;
        _journal.Tell(new ReplayMessages(1, long.MaxValue, 0, Pid, Self));
    }

    private void Recovering()
    {
        Receive<PolicyDecisionRecorded>(Enqueue);
        Receive<RecoverySuccess>(s =>
        {
            if (_highest < 0 && s.HighestSequenceNr > 0)
            {
                _highest = s.HighestSequenceNr;
                _journal.Tell(new ReplayMessages(_highest, _highest, 1, Pid, Self));
                return;
            }
            if (s.HighestSequenceNr == 0)
                _stream = new JournalStream(Pid, 0, "", _journal);
            if (_stream is null)
            {
                _log.Error("decision log: event {0} of {1} could not be read; decisions are not recorded", s.HighestSequenceNr, Pid);
                return;
            }
            Become(Writing);
            Flush();
        });
        Receive<ReplayedMessage>(r =>
        {
            var e = (DomainEvent)(r.Persistent.Payload is Tagged t ? t.Payload : r.Persistent.Payload);
            var manifest = EventCodec.ManifestOf(e);
            _stream = new JournalStream(Pid, r.Persistent.SequenceNr, EventCodec.Hash(Pid, r.Persistent.SequenceNr, manifest, EventCodec.Encode(e)), _journal);
        });
        Receive<ReplayMessagesFailure>(f =>
        {
            _log.Error("decision log: cannot read {0}: {1}; retrying", Pid, f.Cause.Message);
            Timers.StartSingleTimer("retry", new Retry(), TimeSpan.FromSeconds(5));
        });
        Receive<Retry>(_ => ReadHead());
        Receive<IJournalResponse>(_ => { });
    }

    private sealed record Retry;

    private void Writing()
    {
        Receive<PolicyDecisionRecorded>(e =>
        {
            Enqueue(e);
            Flush();
        });
        Receive<IJournalResponse>(reply =>
        {
            if (_inFlight is not { } write)
                return;
            switch (_stream!.Outcome(reply, write))
            {
                case WriteOutcome.Succeeded:
                    _stream.Commit(write);
                    _inFlight = null;
                    Flush();
                    break;
                case WriteOutcome.Rejected:
                case WriteOutcome.Failed:
                    // Outcome unknown for a failure: read the head again; what was not stored is written again.
                    _log.Warning("decision log: write of {0} decisions failed: {1}", write.Events.Length, JournalStream.CauseOf(reply)?.Message);
                    _inFlight = null;
                    _waiting.InsertRange(0, write.Events.Cast<PolicyDecisionRecorded>().Select(e => e with { PrevHash = "" }));
                    _stream = null;
                    Become(Recovering);
                    ReadHead();
                    break;
            }
        });
    }

    private void Enqueue(PolicyDecisionRecorded e)
    {
        if (_waiting.Count >= MaxBacklog)
        {
            _waiting.RemoveAt(0);
            if (_dropped++ % 1000 == 0)
                _log.Warning("decision log: journal too slow, {0} decisions not recorded so far", _dropped);
        }
        _waiting.Add(e);
    }

    private void Flush()
    {
        if (_inFlight is not null || _waiting.Count == 0 || _stream is null)
            return;
        // Bounded batch: one transaction, and a rejected batch costs little.
        var batch = _waiting.Take(500).ToList();
        _waiting.RemoveRange(0, batch.Count);
        _inFlight = _stream.Prepare(batch, Self);
        _stream.Send(_inFlight);
    }
}
