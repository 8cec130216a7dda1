using System.Collections.Immutable;
using System.Text.Json;
using QubesActors.Core.Events;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Audit.Verify;

/// <summary>One stream's first problem: which stream, at which sequence number, what is wrong.</summary>
public sealed record StreamProblem(string PersistenceId, string? Qube, long SequenceNr, string Problem);

/// <summary>A seal whose range does not fold to its digest though no stream shows why (rows moved in the global order).</summary>
public sealed record SealProblem(long SealSequenceNr, long FromOrdering, long ToOrdering, DateTimeOffset SealedAt, string Problem);

public sealed record VerifyReport(
    long Events,
    int StreamCount,
    int Seals,
    long SealedUpTo,
    string SealedDigest,
    DateTimeOffset? LastSealTime,
    long UnsealedEvents,
    DateTimeOffset? FirstUnsealedTime,
    ImmutableArray<StreamProblem> Problems,
    ImmutableArray<SealProblem> SealProblems,
    string? AnchorProblem)
{
    public bool Ok => Problems.IsEmpty && SealProblems.IsEmpty && AnchorProblem is null;
}

/// <summary>
/// Walks the journal as stored, row by row in the global order (<see cref="Add"/>), and checks: every stream's
/// sequence numbers run 1, 2, 3... in the global order, every event links to its predecessor (prev_hash), every seal's
/// range folds to the seal's digest and every stream's head at a seal is still the event the seal recorded; an
/// optional anchor (a digest printed by an earlier verify and kept elsewhere) must still be reproduced. The seals are
/// read first (<see cref="JournalVerifier(IEnumerable{JournalRow}, Anchor?)"/>): the rows are then checked in one pass
/// without keeping them. Only each stream's first problem is kept: what follows a break cannot be trusted anyway.
/// </summary>
public sealed class JournalVerifier
{
    /// <summary>An ordering and the global digest up to it, as <c>verify</c> prints it: <c>1234:ab12...</c>.</summary>
    public sealed record Anchor(long Ordering, string Digest)
    {
        public static bool TryParse(string text, out Anchor? anchor)
        {
            anchor = null;
            var colon = text.IndexOf(':');
            if (colon <= 0 || !long.TryParse(text.AsSpan(0, colon), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ordering)
                || text.Length - colon - 1 != 64 || !text[(colon + 1)..].All(Uri.IsHexDigit))
                return false;
            anchor = new Anchor(ordering, text[(colon + 1)..].ToLowerInvariant());
            return true;
        }

        public override string ToString() => $"{Ordering}:{Digest}";
    }

    private sealed class StreamState(string persistenceId)
    {
        public string PersistenceId { get; } = persistenceId;
        public long LastSeq;
        public string LastLink = "";
        public string? Qube;
        public StreamProblem? Problem;
        /// <summary>Set while the problem is "events missing from here": a later row may show they were only moved.</summary>
        public long? MissingFrom;
        /// <summary>The event a seal recorded that was not there when the walk reached the seal, and that seal's time.</summary>
        public (long SequenceNr, DateTimeOffset SealTime)? MissingAtSeal;
    }

    private sealed record Seal(long SequenceNr, JournalSealed Event);

    private readonly Dictionary<string, StreamState> _streams = new(StringComparer.Ordinal);
    private readonly List<Seal> _seals = [];
    private readonly List<SealProblem> _sealProblems = [];
    private readonly Anchor? _anchor;
    private string? _anchorProblem;
    private bool _anchorChecked;
    private int _nextSeal;
    // The fold of every row so far (what an anchor is compared with), and the fold since the last seal checked,
    // restarted from that seal's digest so a change is blamed on its own seal only.
    private string _digest = "";
    private string _sealDigest = "";
    private long _lastFolded;
    private long _events;
    private long _unsealed;
    private DateTimeOffset? _firstUnsealed;
    private long _lastOrdering;

    /// <param name="sealRows">The rows of the seal stream in sequence order (they are checked again, as a stream, in the main pass).</param>
    public JournalVerifier(IEnumerable<JournalRow> sealRows, Anchor? anchor = null)
    {
        _anchor = anchor;
        long previousTo = 0;
        foreach (var row in sealRows)
        {
            JournalSealed seal;
            try
            {
                seal = (JournalSealed)EventCodec.Decode(row.Payload, row.Manifest);
            }
            catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or InvalidCastException)
            {
                // The seal stream's own check reports the row; the seals after it are still usable for their ranges.
                continue;
            }
            if (seal.FromOrdering != previousTo)
                _sealProblems.Add(new SealProblem(row.SequenceNr, seal.FromOrdering, seal.ToOrdering, seal.Time,
                    $"starts after ordering {seal.FromOrdering}, but the seal before it ended at {previousTo}: a seal was removed or changed"));
            previousTo = seal.ToOrdering;
            _seals.Add(new Seal(row.SequenceNr, seal));
        }
        _seals.Sort((a, b) => a.Event.ToOrdering.CompareTo(b.Event.ToOrdering));
    }

    /// <summary>The next row in ordering order.</summary>
    public void Add(JournalRow row)
    {
        if (row.Ordering <= _lastOrdering)
            throw new ArgumentException("rows must come in ordering order", nameof(row));
        _lastOrdering = row.Ordering;
        _events++;
        // Seals whose range ended before this row: everything they cover has been folded.
        if (!row.IsSeal)
            CloseSealsBefore(row.Ordering);
        var stream = StreamOf(row.PersistenceId);
        var link = row.Link;
        Check(stream, row, link);
        stream.LastSeq = row.SequenceNr;
        stream.LastLink = link;
        if (row.IsSeal)
            return;
        _digest = JournalSealing.Fold(_digest, row.Ordering, link);
        _sealDigest = JournalSealing.Fold(_sealDigest, row.Ordering, link);
        _lastFolded = row.Ordering;
        if (_anchor is { } anchor && !_anchorChecked && row.Ordering >= anchor.Ordering)
            CheckAnchor(anchor, row.Ordering == anchor.Ordering);
        if (_seals.Count == 0 || row.Ordering > _seals[^1].Event.ToOrdering)
        {
            _unsealed++;
            _firstUnsealed ??= TimeOf(row);
        }
    }

    public VerifyReport Finish()
    {
        CloseSealsBefore(long.MaxValue);
        if (_anchor is { } anchor && !_anchorChecked)
            CheckAnchor(anchor, anchor.Ordering == _lastFolded);
        var last = _seals.Count == 0 ? null : _seals[^1].Event;
        var problems = _streams.Values.Where(s => s.Problem is not null).Select(s => s.Problem! with { Qube = s.Qube })
            .OrderBy(p => p.PersistenceId, StringComparer.Ordinal).ToImmutableArray();
        return new VerifyReport(_events, _streams.Count, _seals.Count, last?.ToOrdering ?? 0, last?.Digest ?? "", last?.Time,
            _unsealed, _firstUnsealed, problems, [.. _sealProblems], _anchorProblem);
    }

    private void CheckAnchor(Anchor anchor, bool exact)
    {
        _anchorChecked = true;
        if (!exact)
            _anchorProblem = $"the anchor's ordering {anchor.Ordering} is not in the journal any more (a row was deleted or moved)";
        else if (_digest != anchor.Digest)
            _anchorProblem = $"the journal up to ordering {anchor.Ordering} no longer folds to the anchor's digest: a row at or before it was changed, deleted, inserted or moved";
    }

    private StreamState StreamOf(string persistenceId)
    {
        if (!_streams.TryGetValue(persistenceId, out var stream))
            _streams[persistenceId] = stream = new StreamState(persistenceId);
        return stream;
    }

    private void Check(StreamState stream, JournalRow row, string link)
    {
        if (row.Manifest == "qube.created.v1" && stream.Qube is null)
            stream.Qube = TryDecode(row) is QubeCreated created ? created.Name : null;
        var seq = row.SequenceNr;
        if (stream.MissingAtSeal is { } atSeal && seq == atSeal.SequenceNr && stream.Problem?.SequenceNr == seq)
        {
            // Not deleted: it comes later in the global order than the seal that recorded it.
            stream.MissingAtSeal = null;
            Fail(stream, seq, $"event {seq} ({row.Manifest}) comes after the seal of {AuditTime(atSeal.SealTime)} that recorded it: it was moved in the global order");
            return;
        }
        if (stream.MissingFrom is { } missingFrom && seq >= missingFrom && seq <= stream.LastSeq)
        {
            // The "missing" event was only further down the global order.
            stream.MissingFrom = null;
            Fail(stream, seq, $"event {seq} ({row.Manifest}) comes after event {stream.LastSeq} in the global order: the rows were reordered");
            return;
        }
        if (stream.Problem is not null)
            return;
        if (seq <= stream.LastSeq)
        {
            Fail(stream, seq, $"event {seq} ({row.Manifest}) comes after event {stream.LastSeq} in the global order: the rows were reordered or duplicated");
            return;
        }
        if (seq != stream.LastSeq + 1)
        {
            var missing = seq - stream.LastSeq - 1;
            stream.MissingFrom = stream.LastSeq + 1;
            Fail(stream, stream.LastSeq + 1, missing == 1
                ? $"event {stream.LastSeq + 1} is missing (deleted); event {seq} follows event {stream.LastSeq}"
                : $"events {stream.LastSeq + 1} to {seq - 1} are missing (deleted); event {seq} follows event {stream.LastSeq}");
            return;
        }
        string? prevHash;
        try
        {
            prevHash = PrevHashOf(row.Payload);
        }
        catch (JsonException e)
        {
            Fail(stream, seq, $"event {seq} ({row.Manifest}) cannot be read (modified): {e.Message}");
            return;
        }
        if ((prevHash ?? "") != stream.LastLink)
            Fail(stream, seq, seq == 1
                ? $"event 1 ({row.Manifest}) claims a predecessor: it was modified, or the stream's first events were deleted"
                : $"event {seq} ({row.Manifest}) does not link to event {seq - 1}: one of them was modified, or they were reordered");
    }

    private void Fail(StreamState stream, long seq, string problem) => stream.Problem = new StreamProblem(stream.PersistenceId, null, seq, problem);

    /// <summary>Compares every seal whose range ends before <paramref name="ordering"/> with what was folded and each head recorded.</summary>
    private void CloseSealsBefore(long ordering)
    {
        while (_nextSeal < _seals.Count && _seals[_nextSeal].Event.ToOrdering < ordering)
        {
            var seal = _seals[_nextSeal++];
            var brokenStream = false;
            foreach (var head in seal.Event.Heads)
            {
                var stream = StreamOf(head.PersistenceId);
                if (stream.LastSeq < head.SequenceNr)
                {
                    brokenStream = true;
                    if (stream.Problem is null || stream.Problem.SequenceNr > stream.LastSeq + 1)
                    {
                        stream.MissingAtSeal = (stream.LastSeq + 1, seal.Event.Time);
                        Fail(stream, stream.LastSeq + 1, stream.LastSeq + 1 == head.SequenceNr
                            ? $"event {head.SequenceNr} is missing (deleted): the seal of {AuditTime(seal.Event.Time)} recorded it as the stream's newest"
                            : $"events {stream.LastSeq + 1} to {head.SequenceNr} are missing (deleted): the seal of {AuditTime(seal.Event.Time)} recorded event {head.SequenceNr} as the stream's newest");
                    }
                }
                else if (stream.LastSeq == head.SequenceNr && stream.LastLink != head.Hash)
                {
                    brokenStream = true;
                    if (stream.Problem is null || stream.Problem.SequenceNr > head.SequenceNr)
                        Fail(stream, head.SequenceNr, $"event {head.SequenceNr} was modified after the seal of {AuditTime(seal.Event.Time)}");
                }
                else if (stream.LastSeq > head.SequenceNr)
                {
                    brokenStream = true;
                    if (stream.Problem is null)
                        Fail(stream, head.SequenceNr + 1, $"event {head.SequenceNr + 1} was moved before the seal of {AuditTime(seal.Event.Time)}, which ended the stream at event {head.SequenceNr}");
                }
            }
            if (_sealDigest != seal.Event.Digest && !brokenStream && !_streams.Values.Any(s => s.Problem is not null))
                _sealProblems.Add(new SealProblem(seal.SequenceNr, seal.Event.FromOrdering, seal.Event.ToOrdering, seal.Event.Time,
                    "the rows in its range no longer fold to its digest: a row was inserted, deleted or moved in the global order"));
            // Each seal's range is judged on its own: the next one starts from this seal's recorded digest, so one
            // change is reported once, not again by every later seal.
            _sealDigest = seal.Event.Digest;
        }
    }

    private static string AuditTime(DateTimeOffset time) => Journal.AuditDetails.FormatTime(time);

    private static DateTimeOffset? TimeOf(JournalRow row) => TryDecode(row)?.Time;

    private static DomainEvent? TryDecode(JournalRow row)
    {
        try
        {
            return EventCodec.Decode(row.Payload, row.Manifest);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The event's prev_hash without decoding the whole event (a top-level scan); null when absent (a stream's first event).</summary>
    public static string? PrevHashOf(ReadOnlySpan<byte> payload)
    {
        var reader = new Utf8JsonReader(payload);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw new JsonException("not a JSON object");
        string? prevHash = null;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject)
                break;
            if (reader.TokenType != JsonTokenType.PropertyName)
                throw new JsonException("not a JSON object");
            var isPrevHash = reader.ValueTextEquals("prev_hash"u8);
            reader.Read();
            if (isPrevHash)
                prevHash = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw new JsonException("prev_hash is not a string");
            else
                reader.Skip();
        }
        // Trailing bytes after the object are a modification too.
        if (reader.Read())
            throw new JsonException("data after the event");
        return prevHash;
    }
}
