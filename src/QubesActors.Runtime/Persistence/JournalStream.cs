using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Journal;
using QubesActors.Core.Events;

namespace QubesActors.Runtime.Persistence;

/// <summary>
/// Writes one stream through the journal protocol (the same messages a PersistentActor sends), chaining every event
/// to the previous one. Actors use it instead of PersistentActor so that recovery can be one bulk read for all qubes;
/// the single-writer rule still holds: one actor owns each stream, one write in flight at a time.
/// </summary>
public sealed class JournalStream(string persistenceId, long sequenceNr, string lastHash, IActorRef journal)
{
    private static int _instanceIds;
    private readonly string _writerGuid = Guid.NewGuid().ToString();

    public string PersistenceId { get; } = persistenceId;
    public long SequenceNr { get; private set; } = sequenceNr;
    public string LastHash { get; private set; } = lastHash;
    /// <summary>Distinguishes this writer's journal replies from those of an earlier incarnation.</summary>
    public int InstanceId { get; } = Interlocked.Increment(ref _instanceIds);

    public PendingWrite Prepare<T>(IReadOnlyList<T> events, IActorRef self) where T : DomainEvent
    {
        var stamped = ImmutableArray.CreateBuilder<T>(events.Count);
        var writes = ImmutableList.CreateBuilder<IPersistentRepresentation>();
        var seq = SequenceNr;
        var hash = LastHash;
        foreach (var e in events)
        {
            seq++;
            var linked = (T)(e with { PrevHash = hash });
            var manifest = EventCodec.ManifestOf(linked);
            hash = EventCodec.Hash(PersistenceId, seq, manifest, EventCodec.Encode(linked));
            stamped.Add(linked);
            writes.Add(new Persistent(new Tagged(linked, EventCodec.TagsOf(linked)), seq, PersistenceId, manifest, false, self, _writerGuid)
                .WithTimestamp(linked.Time.ToUnixTimeMilliseconds()));
        }
        var message = new WriteMessages([new AtomicWrite(writes.ToImmutable())], self, InstanceId);
        return new PendingWrite(message, [.. stamped.Cast<DomainEvent>()], seq, hash);
    }

    public void Send(PendingWrite write) => journal.Tell(write.Message);

    public void Commit(PendingWrite write)
    {
        SequenceNr = write.LastSequenceNr;
        LastHash = write.LastHash;
    }

    /// <summary>Classifies a journal reply to the write in flight.</summary>
    public WriteOutcome Outcome(object message, PendingWrite write) => message switch
    {
        WriteMessageSuccess s when s.ActorInstanceId == InstanceId && s.Persistent.SequenceNr == write.LastSequenceNr => WriteOutcome.Succeeded,
        WriteMessageSuccess s when s.ActorInstanceId == InstanceId => WriteOutcome.Progress,
        // An atomic write of several events is refused once per event: the last one decides, the others are progress.
        WriteMessageRejected r when r.ActorInstanceId == InstanceId && r.Persistent.SequenceNr == write.LastSequenceNr => WriteOutcome.Rejected,
        WriteMessageFailure f when f.ActorInstanceId == InstanceId && f.Persistent.SequenceNr == write.LastSequenceNr => WriteOutcome.Failed,
        WriteMessageRejected or WriteMessageFailure => WriteOutcome.Progress,
        WriteMessagesSuccessful or WriteMessagesFailed => WriteOutcome.Progress,
        _ => WriteOutcome.NotMine,
    };

    public static Exception? CauseOf(object message) => message switch
    {
        WriteMessageRejected r => r.Cause,
        WriteMessageFailure f => f.Cause,
        _ => null,
    };

    public static bool IsJournalReply(object message) => message is IJournalResponse;
}

public sealed record PendingWrite(WriteMessages Message, ImmutableArray<DomainEvent> Events, long LastSequenceNr, string LastHash);

public enum WriteOutcome
{
    NotMine,
    Progress,
    Succeeded,
    Rejected,
    Failed,
}

/// <summary>Thrown inside an actor after a failed journal write: Akka restarts it and it recovers from the journal.</summary>
public sealed class JournalWriteFailedException(string message, Exception? inner) : Exception(message, inner);
