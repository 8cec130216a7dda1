using Microsoft.Data.Sqlite;
using QubesActors.Core.Events;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>Snapshots shorten a start's read of the journal, and a bad one never costs a qube.</summary>
public sealed class SnapshotSpecs : QubesSpec
{
    public SnapshotSpecs(ITestOutputHelper output) : base(output)
    {
        Boot();
        CreateLayout();
        for (var i = 0; i < QubeActor.SnapshotEvery + 5; i++)
            Ok(new SetFeature("work", $"f{i}", $"{i}", Dom0));
        AwaitCondition(() => SnapshotRows() > 0, T);
    }

    private long SnapshotRows()
    {
        using var connection = new SqliteConnection(Settings.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        // The snapshot store creates its table on first use: until then there is no snapshot.
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='snapshot'";
        if ((long)command.ExecuteScalar()! == 0)
            return 0;
        command.CommandText = "SELECT count(*) FROM snapshot";
        return (long)command.ExecuteScalar()!;
    }

    private static LoadedStream Work(LoadedJournal journal) =>
        journal.Qubes.Single(s => (s.Snapshot?.State.Name ?? (s.Events[0] as QubeCreated)?.Name) == "work");

    [Fact]
    public void A_start_reads_the_snapshot_and_the_events_after_it_and_recovers_the_same_qube()
    {
        var fromSnapshot = JournalLoader.Load(Settings);
        var whole = JournalLoader.Load(Settings, fromSnapshots: false);
        var work = Work(fromSnapshot);
        Assert.NotNull(work.Snapshot);
        Assert.Null(work.Broken);
        Assert.True(work.Events.Count < Work(whole).Events.Count);
        Assert.Equal(Work(whole).LastHash, work.LastHash);
        var a = CollectionRecovery.Recover(fromSnapshot).State.Get("work");
        var b = CollectionRecovery.Recover(whole).State.Get("work");
        Assert.Equal(b.Features, a.Features);
        Assert.Equal(QubeActor.SnapshotEvery + 5, a.Features.Count);
    }

    [Fact]
    public void An_unreadable_snapshot_is_ignored_and_the_stream_is_read_whole()
    {
        using (var connection = new SqliteConnection(Settings.ConnectionString))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE snapshot SET snapshot = X'7b7d'";
            command.ExecuteNonQuery();
        }
        var journal = JournalLoader.Load(Settings);
        var work = Work(journal);
        Assert.Null(work.Snapshot);
        Assert.Null(work.Broken);
        var recovered = CollectionRecovery.Recover(journal);
        Assert.Empty(recovered.Quarantined);
        Assert.Equal(QubeActor.SnapshotEvery + 5, recovered.State.Get("work").Features.Count);
    }
}
