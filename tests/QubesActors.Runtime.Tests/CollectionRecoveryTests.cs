using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;
using Xunit;

namespace QubesActors.Runtime.Tests;

public sealed class CollectionRecoveryTests
{
    private static LoadedStream Created(string name, int qid)
    {
        var uuid = Guid.NewGuid();
        var created = new QubeCreated(uuid, name, QubeClass.AppVM, qid, "red", ImmutableSortedDictionary<string, string>.Empty,
            ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<string, string>.Empty, null, null)
        { Time = DateTimeOffset.UnixEpoch, Cause = EventCause.System("test") };
        return new LoadedStream(JournalSettings.PersistenceIdOf(uuid), [created], 1, "h", null);
    }

    [Fact]
    public void Two_streams_with_one_name_keep_the_first_and_quarantine_the_second_under_a_name_of_its_own()
    {
        var first = Created("work", 5);
        var second = Created("work", 6);
        var result = CollectionRecovery.Recover(new LoadedJournal(null, [first, second], TimeSpan.Zero));

        Assert.Equal(5, result.State.Get("work").Qid);
        var alias = Assert.Single(result.Quarantined.Keys);
        Assert.StartsWith("work~", alias, StringComparison.Ordinal);
        Assert.Equal(6, result.State.Get(alias).Qid);
        Assert.Contains(result.Problems, p => p.Contains("a second qube with this name", StringComparison.Ordinal));
    }
}
