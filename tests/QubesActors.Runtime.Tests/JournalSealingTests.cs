using System.Text;
using QubesActors.Runtime.Persistence;
using Xunit;

namespace QubesActors.Runtime.Tests;

/// <summary>The pure part of sealing: which rows a seal covers, the fold, the heads.</summary>
public sealed class JournalSealingTests
{
    private static JournalRow Row(long ordering, string pid, long seq) =>
        new(ordering, pid, seq, "qube.property-set.v1", Encoding.UTF8.GetBytes($"{{\"n\":{ordering}}}"));

    private static JournalRow Seal(long ordering, long seq) => new(ordering, JournalSealed.PersistenceId, seq, JournalSealed.Manifest, [1, 2, 3]);

    [Fact]
    public void A_seal_folds_every_row_in_order_and_records_each_streams_newest_event()
    {
        var rows = new[] { Row(1, "qube-a", 1), Row(2, "qube-b", 1), Row(3, "qube-a", 2) };
        var draft = JournalSealing.Draft(SealPosition.Start, rows, _ => false, out var gap);
        Assert.Null(gap);
        Assert.NotNull(draft);
        Assert.Equal((0L, 3L, 3L), (draft.FromOrdering, draft.ToOrdering, draft.Rows));
        var expected = rows.Aggregate("", (d, r) => JournalSealing.Fold(d, r.Ordering, r.Link));
        Assert.Equal(expected, draft.Digest);
        Assert.Equal([new SealedHead("qube-a", 2, rows[2].Link), new SealedHead("qube-b", 1, rows[1].Link)], draft.Heads.ToArray());
    }

    [Fact]
    public void The_next_seal_continues_the_previous_digest_and_skips_the_seal_rows()
    {
        var first = JournalSealing.Draft(SealPosition.Start, [Row(1, "qube-a", 1)], _ => false, out _)!;
        var position = new SealPosition(first.ToOrdering, first.Digest, 1, "link");
        var rows = new[] { Seal(2, 1), Row(3, "qube-a", 2) };
        var second = JournalSealing.Draft(position, rows, _ => false, out var gap)!;
        Assert.Null(gap);
        Assert.Equal((1L, 3L, 1L), (second.FromOrdering, second.ToOrdering, second.Rows));
        Assert.Equal(JournalSealing.Fold(first.Digest, 3, rows[1].Link), second.Digest);
        Assert.DoesNotContain(second.Heads, h => h.PersistenceId == JournalSealed.PersistenceId);
    }

    [Fact]
    public void Only_seal_rows_after_the_last_seal_make_no_seal()
    {
        Assert.Null(JournalSealing.Draft(new SealPosition(5, "d", 1, "l"), [Seal(6, 2)], _ => false, out _));
        Assert.Null(JournalSealing.Draft(SealPosition.Start, [], _ => false, out _));
    }

    [Fact]
    public void A_gap_in_the_ordering_holds_the_seal_back_until_it_is_accepted_as_old()
    {
        var rows = new[] { Row(1, "qube-a", 1), Row(2, "qube-a", 2), Row(4, "qube-b", 1) };
        // Ordering 3 may be a transaction that has not committed yet: the seal ends before it.
        var held = JournalSealing.Draft(SealPosition.Start, rows, _ => false, out var gap)!;
        Assert.Equal(3L, gap);
        Assert.Equal(2L, held.ToOrdering);
        Assert.DoesNotContain(held.Heads, h => h.PersistenceId == "qube-b");
        // Once old enough (a rolled-back write), the seal goes past it.
        var past = JournalSealing.Draft(SealPosition.Start, rows, ordering => ordering == 3, out gap)!;
        Assert.Null(gap);
        Assert.Equal(4L, past.ToOrdering);
    }

    [Fact]
    public void A_gap_at_the_start_of_the_range_makes_no_seal_yet()
    {
        Assert.Null(JournalSealing.Draft(new SealPosition(10, "d", 1, "l"), [Row(12, "qube-a", 5)], _ => false, out var gap));
        Assert.Equal(11L, gap);
    }

    [Fact]
    public void The_fold_depends_on_the_ordering_and_the_link()
    {
        var a = JournalSealing.Fold("", 1, "x");
        Assert.NotEqual(a, JournalSealing.Fold("", 2, "x"));
        Assert.NotEqual(a, JournalSealing.Fold("", 1, "y"));
        Assert.NotEqual(a, JournalSealing.Fold("z", 1, "x"));
        Assert.Matches("^[0-9a-f]{64}$", a);
    }
}
