using System.Collections.Immutable;
using System.Text;
using Akka.Actor;
using Microsoft.Data.Sqlite;
using Npgsql;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>What a daemon restart and a restarted qube actor must preserve, and what a damaged journal must not break.</summary>
public abstract class RecoverySpecBase : QubesSpec
{
    private readonly ITestOutputHelper _output;

    protected RecoverySpecBase(ITestOutputHelper output, JournalSettings settings) : base(output, settings) => _output = output;

    /// <summary>Everything a restart must keep, one line per qube, independent of collection identity.</summary>
    public static string Describe(CollectionSnapshot snapshot)
    {
        var c = snapshot.State;
        var lines = new List<string> { "globals: " + string.Join(",", c.Globals.Select(g => $"{g.Key}={g.Value}")) };
        foreach (var q in c.Qubes.Values.OrderBy(q => q.Name, StringComparer.Ordinal))
            lines.Add(string.Join(" | ",
                q.Name, q.Uuid, q.Class, q.Qid, q.DispId, q.Label, q.Power, q.ConnectedNetVm, q.Failed, q.Notes,
                string.Join(",", q.Properties.Select(p => $"{p.Key}={p.Value}")),
                string.Join(",", q.Tags),
                string.Join(",", q.Features.Select(f => $"{f.Key}={f.Value}")),
                q.Firewall is { } fw ? string.Join(";", fw) : "(default)",
                string.Join(",", q.Assignments.Values.Select(a => $"{a.Key}:{a.Mode}"))));
        return string.Join("\n", lines);
    }

    /// <summary>Stops this test's actor system (the old daemon) and starts a new one on the same journal and backend.</summary>
    protected (Akka.TestKit.Xunit2.TestKit Kit, QubesHost Host) RestartDaemon(SimulatedBackend backend)
    {
        Shutdown(Sys, T, verifySystemShutdown: true);
        var kit = new Akka.TestKit.Xunit2.TestKit(ConfigFor(Settings), "qubes-restarted", _output);
        return (kit, QubesHost.Start(kit.Sys, backend, Settings));
    }

    protected void Recovery_after_a_daemon_restart_gives_the_same_collection_and_adopts_running_domains()
    {
        var backend = NewBackend();
        var first = Boot(backend);
        CreateLayout();
        CreateApp("personal");
        Ok(new SetFeature("work", "service.cups", "1", Dom0));
        Ok(new AddTag("work", "audited", Dom0));
        Ok(new SetNotes("work", "quarterly reports", Dom0));
        Ok(new SetFirewall("work", "action=accept dsthost=example.com\naction=drop\n", Dom0));
        Ok(new SetProperty("personal", "label", "purple", Dom0));
        Ok(new AssignDevice("personal", "usb", "sys-usb:2-1", "auto-attach", ImmutableSortedDictionary<string, string>.Empty, Dom0));
        Ok(new SetGlobalProperty("default_netvm", "sys-firewall", Dom0));
        Ok(new CreateLabel("teal", "0x008080", Dom0));
        Ok(new StartQube("work", Dom0));
        Ok(new StartQube("personal", Dom0));
        Ok(new ShutdownQube("personal", false, true, Dom0));
        AwaitAssert(() => Assert.NotNull(backend.FirewallOf("sys-firewall", "work")), T);
        var before = first.Snapshot();
        var calls = backend.Calls.Count;

        var (kit, host) = RestartDaemon(backend);
        using (kit)
        {
            Assert.Equal(5 + 1, host.Ready.Qubes);
            Assert.Equal(0, host.Ready.Quarantined);
            var after = host.Snapshot();
            Assert.Empty(after.Quarantined);
            Assert.Equal(Describe(before), Describe(after));
            Assert.Contains(after.State.Labels.Values, l => l.Name == "teal");
            // Running domains were adopted, not restarted.
            Assert.DoesNotContain(backend.Calls.Skip(calls), c => c.StartsWith("start ", StringComparison.Ordinal)
                                                                 || c.StartsWith("kill ", StringComparison.Ordinal)
                                                                 || c.StartsWith("shutdown ", StringComparison.Ordinal));
            Assert.Equal("sys-firewall", backend.NetworkOf("work"));
            Assert.Equal("Running", host.Ok(new PingQube("work", Dom0)).Output);
            // And they are under control again: the recovered stream goes on.
            host.Ok(new ShutdownQube("work", false, true, Dom0));
            Assert.False(backend.IsRunning("work"));
            host.Ok(new SetFeature("work", "after-restart", "1", Dom0));
            var stream = JournalLoader.Load(Settings).Qubes.Single(s => s.Events[0] is QubeCreated { Name: "work" });
            Assert.False(stream.IsBroken, stream.Broken);
            Assert.IsType<QubeFeatureSet>(stream.Events[^1]);
        }
    }
}

public sealed class PersistenceSpecs : RecoverySpecBase
{
    public PersistenceSpecs(ITestOutputHelper output) : base(output, NewSqlite()) { }

    [Fact]
    public void Recovery_after_a_daemon_restart_gives_the_same_collection() =>
        Recovery_after_a_daemon_restart_gives_the_same_collection_and_adopts_running_domains();

    [Fact]
    public void A_domain_that_died_while_the_daemon_was_down_is_recorded_as_stopped()
    {
        var backend = NewBackend();
        Boot(backend);
        CreateLayout();
        Ok(new SetProperty("work", "restart", "temporary", Dom0));
        Ok(new StartQube("work", Dom0));
        Shutdown(Sys, T, verifySystemShutdown: true);
        backend.Crash("work");
        using var kit = new Akka.TestKit.Xunit2.TestKit(ConfigFor(Settings), "qubes-restarted");
        var host = QubesHost.Start(kit.Sys, backend, Settings);
        kit.AwaitAssert(() => Assert.Equal(PowerState.Halted, host.Qube("work").Power), T);
        Assert.Equal(PowerState.Running, host.Qube("sys-firewall").Power);
    }

    [Fact]
    public void A_permanent_qube_adopted_after_a_daemon_restart_is_still_restarted_when_it_crashes()
    {
        var backend = NewBackend();
        Boot(backend);
        CreateLayout();
        Ok(new StartQube("work", Dom0));
        var (kit, host) = RestartDaemon(backend);
        using (kit)
        {
            backend.Crash("sys-net");
            kit.AwaitAssert(() =>
            {
                Assert.Equal(2, backend.StartCount("sys-net"));
                Assert.Equal(PowerState.Running, host.Qube("sys-net").Power);
            }, T, TimeSpan.FromMilliseconds(50));
        }
    }

    private IActorRef? QubeActorOf(string name) =>
        Sys.ActorSelection($"/user/qubes/*/{name}").ResolveOne(T).GetAwaiter().GetResult();

    [Fact]
    public void A_qube_actor_that_throws_is_restarted_and_recovers_without_touching_its_domain()
    {
        Boot();
        CreateLayout();
        Ok(new StartQube("work", Dom0));
        Ok(new SetFeature("work", "before", "1", Dom0));
        var actor = QubeActorOf("work")!;
        Watch(actor);
        var calls = Backend.Calls.Count;

        actor.Tell(new QubeProtocol.FailForTest("simulated bug"));
        Assert.Equal("Running", Ok(new PingQube("work", Dom0)).Output);
        ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // not Terminated: restarted in place
        Assert.DoesNotContain(Backend.Calls.Skip(calls), c => c.EndsWith(" work", StringComparison.Ordinal));
        Assert.True(Backend.IsRunning("work"));
        Assert.Equal("sys-firewall", Backend.NetworkOf("work"));

        // The recovered actor knows where its stream is and what runs.
        Ok(new SetFeature("work", "after", "1", Dom0));
        Ok(new ShutdownQube("work", false, true, Dom0));
        Assert.False(Backend.IsRunning("work"));
        var stream = JournalLoader.Load(Settings).Qubes.Single(s => s.Events[0] is QubeCreated { Name: "work" });
        Assert.False(stream.IsBroken, stream.Broken);
        Assert.Equal(["1", "1"], new[] { Qube("work").Features["before"], Qube("work").Features["after"] });
    }

    [Fact]
    public void A_permanent_netvm_whose_actor_was_restarted_is_still_restarted_when_it_crashes()
    {
        Boot();
        CreateLayout();
        Ok(new StartQube("sys-net", Dom0));
        QubeActorOf("sys-net")!.Tell(new QubeProtocol.FailForTest("simulated bug"));
        Assert.Equal("Running", Ok(new PingQube("sys-net", Dom0)).Output);
        Backend.Crash("sys-net");
        AwaitAssert(() =>
        {
            Assert.Equal(2, Backend.StartCount("sys-net"));
            Assert.Equal(PowerState.Running, Qube("sys-net").Power);
        }, T, TimeSpan.FromMilliseconds(50));
    }

    private static string ConnectionStringOf(JournalSettings settings) => settings.ConnectionString;

    private (string Pid, long Seq) MiddleEventOf(string qube, int fromEnd)
    {
        var stream = JournalLoader.Load(Settings).Qubes.Single(s => s.Events[0] is QubeCreated c && c.Name == qube);
        return (stream.PersistenceId, stream.LastSequenceNr - fromEnd);
    }

    private void TamperedStreamSetup(SimulatedBackend backend)
    {
        Boot(backend);
        CreateLayout();
        Ok(new SetFeature("work", "color", "blue", Dom0));
        Ok(new SetFeature("work", "shade", "dark", Dom0));
        Ok(new SetFeature("work", "mood", "calm", Dom0));
        Shutdown(Sys, T, verifySystemShutdown: true);
    }

    private void AssertQuarantinedAndTheRestStarts(SimulatedBackend backend, string reasonFragment)
    {
        using var kit = new Akka.TestKit.Xunit2.TestKit(ConfigFor(Settings), "qubes-restarted");
        var host = QubesHost.Start(kit.Sys, backend, Settings);
        Assert.Equal(1, host.Ready.Quarantined);
        var snapshot = host.Snapshot();
        var reason = Assert.Single(snapshot.Quarantined, q => q.Key == "work").Value;
        Assert.Contains(reasonFragment, reason, StringComparison.Ordinal);
        var refused = host.Refused(new StartQube("work", Dom0));
        Assert.Contains("quarantined", refused.Message, StringComparison.Ordinal);
        host.Ok(new StartQube("sys-firewall", Dom0));
        Assert.True(backend.IsRunning("sys-firewall"));
        Assert.True(backend.IsRunning("sys-net"));
        Assert.False(backend.IsRunning("work"));
        host.Ok(new SetFeature("sys-net", "still", "writable", Dom0));
    }

    [Fact]
    public void A_stream_whose_event_was_modified_quarantines_that_qube_and_the_rest_starts()
    {
        var backend = NewBackend();
        TamperedStreamSetup(backend);
        var (pid, seq) = MiddleEventOf("work", 1);
        using (var db = new SqliteConnection(ConnectionStringOf(Settings)))
        {
            db.Open();
            using var read = db.CreateCommand();
            read.CommandText = "SELECT message FROM journal WHERE persistence_id = $p AND sequence_number = $s";
            read.Parameters.AddWithValue("$p", pid);
            read.Parameters.AddWithValue("$s", seq);
            var json = Encoding.UTF8.GetString((byte[])read.ExecuteScalar()!);
            Assert.Contains("\"dark\"", json, StringComparison.Ordinal);
            using var write = db.CreateCommand();
            write.CommandText = "UPDATE journal SET message = $m WHERE persistence_id = $p AND sequence_number = $s";
            write.Parameters.AddWithValue("$m", Encoding.UTF8.GetBytes(json.Replace("\"dark\"", "\"pale\"", StringComparison.Ordinal)));
            write.Parameters.AddWithValue("$p", pid);
            write.Parameters.AddWithValue("$s", seq);
            Assert.Equal(1, write.ExecuteNonQuery());
        }
        AssertQuarantinedAndTheRestStarts(backend, "one of them was modified");
    }

    [Fact]
    public void A_stream_with_a_deleted_event_quarantines_that_qube_and_the_rest_starts()
    {
        var backend = NewBackend();
        TamperedStreamSetup(backend);
        var (pid, seq) = MiddleEventOf("work", 1);
        using (var db = new SqliteConnection(ConnectionStringOf(Settings)))
        {
            db.Open();
            using var delete = db.CreateCommand();
            delete.CommandText = "DELETE FROM journal WHERE persistence_id = $p AND sequence_number = $s";
            delete.Parameters.AddWithValue("$p", pid);
            delete.Parameters.AddWithValue("$s", seq);
            Assert.Equal(1, delete.ExecuteNonQuery());
        }
        AssertQuarantinedAndTheRestStarts(backend, "event(s) missing");
    }

    [Fact]
    public void A_stream_with_an_unreadable_event_quarantines_that_qube()
    {
        var backend = NewBackend();
        TamperedStreamSetup(backend);
        var (pid, seq) = MiddleEventOf("work", 1);
        using (var db = new SqliteConnection(ConnectionStringOf(Settings)))
        {
            db.Open();
            using var write = db.CreateCommand();
            write.CommandText = "UPDATE journal SET message = $m WHERE persistence_id = $p AND sequence_number = $s";
            write.Parameters.AddWithValue("$m", Encoding.UTF8.GetBytes("{not json"));
            write.Parameters.AddWithValue("$p", pid);
            write.Parameters.AddWithValue("$s", seq);
            Assert.Equal(1, write.ExecuteNonQuery());
        }
        AssertQuarantinedAndTheRestStarts(backend, "cannot be read");
    }
}

/// <summary>The recovery spec on PostgreSQL. CI always sets QUBES_TEST_POSTGRES; without it this fails, it does not skip.</summary>
public sealed class PostgresPersistenceSpecs : RecoverySpecBase
{
    private const string Variable = "QUBES_TEST_POSTGRES";
    private static readonly string? ConnectionString = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } cs ? cs : null;
    private readonly string? _schema;

    public PostgresPersistenceSpecs(ITestOutputHelper output) : this(output, CreateSchema()) { }

    private PostgresPersistenceSpecs(ITestOutputHelper output, (JournalSettings Settings, string? Schema) target) : base(output, target.Settings) =>
        _schema = target.Schema;

    /// <summary>A fresh schema per test (its own journal, tags and snapshot tables); SQLite stands in when PostgreSQL is not configured.</summary>
    private static (JournalSettings, string?) CreateSchema()
    {
        if (ConnectionString is null)
            return (NewSqlite(), null);
        var schema = $"qa_rt_{Guid.NewGuid():N}";
        using (var connection = new NpgsqlConnection(ConnectionString))
        {
            connection.Open();
            JournalSettings.Execute(connection, $"CREATE SCHEMA {schema}");
        }
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = schema };
        return (new JournalSettings(JournalProvider.PostgreSql, builder.ConnectionString), schema);
    }

    [Fact]
    public void Recovery_after_a_daemon_restart_gives_the_same_collection_on_PostgreSQL()
    {
        if (ConnectionString is null)
            Assert.Fail($"{Variable} is not set: the PostgreSQL persistence spec needs an Npgsql connection string "
                        + "(start one with tools/ci/postgres.sh start; CI sets it through build.cake).");
        Recovery_after_a_daemon_restart_gives_the_same_collection_and_adopts_running_domains();
        using var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {_schema}.journal";
        Assert.True(Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 10);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing || _schema is null || ConnectionString is null)
            return;
        NpgsqlConnection.ClearAllPools();
        using var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        JournalSettings.Execute(connection, $"DROP SCHEMA IF EXISTS {_schema} CASCADE");
    }
}
