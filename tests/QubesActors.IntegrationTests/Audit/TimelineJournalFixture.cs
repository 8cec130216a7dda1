using System.Collections.Immutable;
using Akka.Actor;
using Microsoft.Data.Sqlite;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;
using Xunit;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>
/// A journal with a history worth a timeline, written by the runtime's own actors on the simulated backend (which can
/// be told to crash a domain): "worker" gets a property, runs, pauses and stops; "crashy" (restart=permanent,
/// restart_intensity=1) crashes, is restarted, crashes again and hits the restart limit; "phoenix" is created, removed
/// and created again. Afterwards a hostile qube and a denial it asked for are written into the file by hand (HTML and
/// script in the name, a line separator, control characters), as a compromised writer could.
/// </summary>
public sealed class TimelineJournalFixture : IAsyncLifetime
{
    public const string HostileName = "</script><img src=x onerror=\"document.title='pwned'\">\u2028<b>bold</b>\u001b[31m";
    public const string HostileReason = "<script>document.title='pwned2'</script>";

    public string StateDir { get; } = Path.Combine(Path.GetTempPath(), "qa-timeline-" + Guid.NewGuid().ToString("N")[..8]);

    public DateTimeOffset WorkerCreated { get; private set; }
    /// <summary>Between worker's creation and its memory=512.</summary>
    public DateTimeOffset BeforeMemorySet { get; private set; }
    /// <summary>After memory=512, before the start.</summary>
    public DateTimeOffset AfterMemorySet { get; private set; }
    /// <summary>While worker ran (before its pause).</summary>
    public DateTimeOffset WhileRunning { get; private set; }
    /// <summary>How long worker ran at least before its pause.</summary>
    public static readonly TimeSpan RunningAtLeast = TimeSpan.FromMilliseconds(400);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(StateDir);
        var settings = JournalSettings.SqliteFile(Path.Combine(StateDir, "journal.db"));
        var backend = new SimulatedBackend(new SimulatedBackendOptions());
        using (var system = ActorSystem.Create("timeline-fixture", Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING")
                   .WithFallback(RuntimeConfig.For(settings))))
        {
            var events = system.ActorOf(Props.Create<EventHub>(), "events");
            var journal = Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null);
            var qubes = system.ActorOf(QubesSupervisor.Props(backend, events, journal, () => JournalLoader.Load(settings)), "qubes");
            await qubes.Ask<Ready>(new WaitUntilReady(), Timeout);
            async Task Ok(IQubesCommand command)
            {
                var result = await qubes.Ask<CommandResult>(command, Timeout);
                Assert.True(result is Done, $"{command}: {result}");
            }
            async Task<QubeState> Qube(string name) => (await qubes.Ask<CollectionSnapshot>(new GetCollection(), Timeout)).State.Get(name);
            async Task Until(string what, Func<Task<bool>> condition)
            {
                var deadline = DateTime.UtcNow + Timeout;
                while (!await condition())
                {
                    Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
                    await Task.Delay(50);
                }
            }
            var dom0 = Caller.Dom0;
            var none = ImmutableDictionary<string, string>.Empty;

            await Ok(new CreateQube(QubeClass.TemplateVM, "tpl", "black", null, none.Add("memory", "800"), dom0));
            await Ok(new CreateQube(QubeClass.AppVM, "worker", "green", "tpl", none, dom0));
            WorkerCreated = DateTimeOffset.UtcNow;
            BeforeMemorySet = await Pause();
            await Ok(new SetProperty("worker", "memory", "512", dom0));
            AfterMemorySet = await Pause();
            await Ok(new StartQube("worker", dom0));
            await Task.Delay(RunningAtLeast / 2);
            WhileRunning = DateTimeOffset.UtcNow;
            await Task.Delay(RunningAtLeast / 2 + TimeSpan.FromMilliseconds(20));
            await Ok(new PauseQube("worker", dom0));
            await Task.Delay(100);
            await Ok(new UnpauseQube("worker", dom0));
            await Ok(new ShutdownQube("worker", false, true, dom0));

            await Ok(new CreateQube(QubeClass.AppVM, "crashy", "orange", "tpl", none.Add("restart", "permanent").Add("restart_intensity", "1"), dom0));
            await Ok(new StartQube("crashy", dom0));
            backend.Crash("crashy", "kernel panic");
            await Until("crashy restarted", async () => backend.StartCount("crashy") == 2 && (await Qube("crashy")).Power == PowerState.Running);
            backend.Crash("crashy", "kernel panic again");
            await Until("crashy failed", async () => (await Qube("crashy")).Failed);

            await Ok(new CreateQube(QubeClass.AppVM, "phoenix", "yellow", "tpl", none, dom0));
            await Ok(new RemoveQube("phoenix", dom0));
            await Ok(new CreateQube(QubeClass.AppVM, "phoenix", "purple", "tpl", none, dom0));
            await Ok(new StartQube("phoenix", dom0));

            await system.Terminate();
        }
        SqliteConnection.ClearAllPools();
        AppendHostile();
    }

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static async Task<DateTimeOffset> Pause()
    {
        await Task.Delay(30);
        var t = DateTimeOffset.UtcNow;
        await Task.Delay(30);
        return t;
    }

    private void AppendHostile()
    {
        var uuid = Guid.NewGuid();
        var pid = JournalSettings.PersistenceIdOf(uuid);
        var cause = EventCause.Admin("dom0", "admin.vm.Create.AppVM");
        var created = new QubeCreated(uuid, HostileName, QubeClass.AppVM, 99, "red",
            ImmutableSortedDictionary<string, string>.Empty, [], ImmutableSortedDictionary<string, string>.Empty, null, null)
        {
            Time = DateTimeOffset.UtcNow,
            Cause = cause,
        };
        var denial = new PolicyDecisionRecorded("qubes.VMShell", "+<i>arg</i>", HostileName, "worker", "worker", null, "deny", "Deny",
            HostileReason, null, null, "policy socket \u2029<u>x</u>", "log line")
        {
            Time = DateTimeOffset.UtcNow,
            Cause = new EventCause(EventCause.PolicyKind),
        };
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(StateDir, "journal.db") }.ToString());
        connection.Open();
        JournalRows.Insert(connection, pid, 1, "qube.created.v1", ";admin;lifecycle;", EventCodec.Encode(created));
        JournalRows.Insert(connection, PolicyDecisionRecorded.PersistenceId, 1, PolicyDecisionRecorded.Manifest, ";policy;", EventCodec.Encode(denial));
    }

    public Task DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }
}
