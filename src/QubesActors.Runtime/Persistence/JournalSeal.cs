using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using QubesActors.Core.Events;

namespace QubesActors.Runtime.Persistence;

/// <summary>
/// A seal over the journal's global order: every row with an ordering in (<paramref name="FromOrdering"/>,
/// <paramref name="ToOrdering"/>] (the seal stream's own rows excepted) folded into <paramref name="Digest"/>, which
/// continues the previous seal's digest, plus the head (sequence number and link) each stream had at
/// <paramref name="ToOrdering"/>. A stream's chain vouches for every event but its newest; the seal vouches for the
/// newest too, and for the global order: a row edited, deleted, inserted or moved anywhere before the last seal changes
/// the fold (docs/audit-verify.md).
/// </summary>
public sealed record JournalSealed(long FromOrdering, long ToOrdering, long Rows, string Digest, ImmutableArray<SealedHead> Heads) : DomainEvent
{
    public const string PersistenceId = "journal-seals";
    public const string Manifest = "journal.sealed.v1";
}

/// <summary>The newest event of one stream within a seal's range.</summary>
public sealed record SealedHead(string PersistenceId, long SequenceNr, string Hash);

/// <summary>One journal row as stored: what the chain and the seals are computed over.</summary>
public sealed record JournalRow(long Ordering, string PersistenceId, long SequenceNr, string Manifest, byte[] Payload)
{
    /// <summary>The row's chain link (the hash the next event of its stream carries as prev_hash).</summary>
    public string Link => EventCodec.Hash(PersistenceId, SequenceNr, Manifest, Payload);

    public bool IsSeal => PersistenceId == JournalSealed.PersistenceId;
}

/// <summary>Where sealing stands: the last seal's range end and digest, and the seal stream's head.</summary>
public sealed record SealPosition(long ToOrdering, string Digest, long SealSequenceNr, string SealLink)
{
    public static SealPosition Start { get; } = new(0, "", 0, "");
}

/// <summary>A seal ready to be written, or the reason none is.</summary>
public sealed record SealDraft(long FromOrdering, long ToOrdering, long Rows, string Digest, ImmutableArray<SealedHead> Heads);

/// <summary>The pure part of sealing and of verifying seals: the fold, and which rows a seal may cover.</summary>
public static class JournalSealing
{
    /// <summary>digest' = sha256(digest \n ordering \n link): the global chain, one step per row.</summary>
    public static string Fold(string digest, long ordering, string link)
    {
        Span<byte> digestBytes = stackalloc byte[32];
        var text = string.Create(CultureInfo.InvariantCulture, $"{digest}\n{ordering}\n{link}");
        SHA256.HashData(Encoding.ASCII.GetBytes(text), digestBytes);
        return Convert.ToHexStringLower(digestBytes);
    }

    /// <summary>
    /// The seal of the rows after <paramref name="position"/> (given in ordering order, starting after
    /// position.ToOrdering), up to the first gap in the ordering that <paramref name="gapAccepted"/> does not accept:
    /// on PostgreSQL a row may commit after a row with a higher ordering, and a seal written before it committed
    /// would disown it. <paramref name="firstGap"/> is the ordering missing there. Null when no row of another stream
    /// than the seals' is covered.
    /// </summary>
    public static SealDraft? Draft(SealPosition position, IReadOnlyList<JournalRow> rows, Func<long, bool> gapAccepted, out long? firstGap)
    {
        firstGap = null;
        var digest = position.Digest;
        var expected = position.ToOrdering + 1;
        long to = position.ToOrdering, count = 0;
        var heads = new Dictionary<string, SealedHead>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (row.Ordering < expected)
                continue;
            // The orderings from `expected` to row.Ordering - 1 are missing: go on only when told that gap is old.
            if (row.Ordering > expected && !gapAccepted(expected))
            {
                firstGap = expected;
                break;
            }
            expected = row.Ordering + 1;
            if (row.IsSeal)
                continue;
            var link = row.Link;
            digest = Fold(digest, row.Ordering, link);
            heads[row.PersistenceId] = new SealedHead(row.PersistenceId, row.SequenceNr, link);
            to = row.Ordering;
            count++;
        }
        return count == 0 ? null : new SealDraft(position.ToOrdering, to, count, digest, [.. heads.Values.OrderBy(h => h.PersistenceId, StringComparer.Ordinal)]);
    }
}
