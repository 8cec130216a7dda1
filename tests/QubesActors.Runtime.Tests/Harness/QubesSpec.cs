using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests.Harness;

/// <summary>A running collection in one actor system: the supervisor, its event hub and the backend it drives.</summary>
public sealed class QubesHost
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public required ActorSystem System { get; init; }
    public required IActorRef Qubes { get; init; }
    public required IActorRef Events { get; init; }
    public required SimulatedBackend Backend { get; init; }
    public required Ready Ready { get; init; }

    public static QubesHost Start(ActorSystem system, SimulatedBackend backend, JournalSettings settings, Func<LoadedJournal>? load = null)
    {
        var events = system.ActorOf(Props.Create<EventHub>(), "events");
        var journal = Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null);
        var qubes = system.ActorOf(QubesSupervisor.Props(backend, events, journal, load ?? (() => JournalLoader.Load(settings))), "qubes");
        var ready = qubes.Ask<Ready>(new WaitUntilReady(), Timeout).GetAwaiter().GetResult();
        return new QubesHost { System = system, Qubes = qubes, Events = events, Backend = backend, Ready = ready };
    }

    public CommandResult Send(IQubesCommand command) => Qubes.Ask<CommandResult>(command, Timeout).GetAwaiter().GetResult();

    public CollectionSnapshot Snapshot() => Qubes.Ask<CollectionSnapshot>(new GetCollection(), Timeout).GetAwaiter().GetResult();

    public QubeState Qube(string name) => Snapshot().State.Get(name);

    public Done Ok(IQubesCommand command)
    {
        var result = Send(command);
        if (result is Refused r)
            Assert.Fail($"{command.GetType().Name} was refused: {r.Error.QubesClassName}: {r.Error.Message}");
        return Assert.IsType<Done>(result);
    }

    public QubesError Refused(IQubesCommand command)
    {
        var result = Send(command);
        return Assert.IsType<Refused>(result).Error;
    }
}

/// <summary>
/// Base of the runtime specs: a TestKit whose actor system journals to a fresh SQLite file, and helpers that build the
/// usual layout (template, sys-net → sys-firewall → work) and talk to the collection with explicit timeouts.
/// </summary>
public abstract class QubesSpec : Akka.TestKit.Xunit2.TestKit
{
    protected static readonly TimeSpan T = QubesHost.Timeout;
    protected static readonly Caller Dom0 = Caller.Dom0;

    protected QubesSpec(ITestOutputHelper output) : this(output, NewSqlite()) { }

    protected QubesSpec(ITestOutputHelper output, JournalSettings settings, Config? extra = null)
        : base(ConfigFor(settings, extra), "qubes-spec", output)
    {
        Settings = settings;
    }

    protected JournalSettings Settings { get; }

    /// <summary>After the actor system is down: drops the test's SQLite file (and its WAL) so runs leave nothing behind.</summary>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing || Settings.Provider != JournalProvider.Sqlite)
            return;
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection(Settings.ConnectionString))
            Microsoft.Data.Sqlite.SqliteConnection.ClearPool(connection);
        var path = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(Settings.ConnectionString).DataSource;
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
                // still open somewhere: the temp directory keeps it
            }
        }
    }

    public static JournalSettings NewSqlite() =>
        JournalSettings.SqliteFile(Path.Combine(Path.GetTempPath(), "qubesactors-rt-tests", $"{Guid.NewGuid():N}.db"));

    public static Config ConfigFor(JournalSettings settings, Config? extra = null)
    {
        var config = ConfigurationFactory.ParseString("""
            akka.loglevel = WARNING
            akka.stdout-loglevel = WARNING
            akka.test.single-expect-default = 10s
            """);
        if (extra is not null)
            config = extra.WithFallback(config);
        return config.WithFallback(RuntimeConfig.For(settings));
    }

    public static ImmutableArray<BackendDevice> UsbMouse { get; } = [new BackendDevice("usb", "sys-usb", "2-1", "1234:5678", "Mouse")];

    public static SimulatedBackend NewBackend() => new(new SimulatedBackendOptions
    {
        Devices = ImmutableDictionary<string, ImmutableArray<BackendDevice>>.Empty.Add("sys-usb", UsbMouse),
    });

    private QubesHost? _host;

    protected QubesHost Host => _host ?? throw new InvalidOperationException("call Boot() first");

    protected SimulatedBackend Backend => Host.Backend;

    protected QubesHost Boot(SimulatedBackend? backend = null, Func<LoadedJournal>? load = null) =>
        _host = QubesHost.Start(Sys, backend ?? NewBackend(), Settings, load);

    protected CommandResult Send(IQubesCommand command) => Host.Send(command);
    protected Done Ok(IQubesCommand command) => Host.Ok(command);
    protected QubesError Refused(IQubesCommand command) => Host.Refused(command);
    protected QubeState Qube(string name) => Host.Qube(name);

    protected static ImmutableDictionary<string, string> Props(params (string Key, string Value)[] pairs) =>
        pairs.ToImmutableDictionary(p => p.Key, p => p.Value);

    /// <summary>fedora (template), sys-net → sys-firewall → work; none of them running.</summary>
    protected void CreateLayout(QubesHost? host = null)
    {
        host ??= Host;
        host.Ok(new CreateQube(QubeClass.TemplateVM, "fedora", "black", null, Props(), Dom0));
        host.Ok(new CreateQube(QubeClass.AppVM, "sys-net", "red", "fedora", Props(("provides_network", "True"), ("netvm", "")), Dom0));
        host.Ok(new CreateQube(QubeClass.AppVM, "sys-firewall", "green", "fedora", Props(("provides_network", "True"), ("netvm", "sys-net")), Dom0));
        host.Ok(new CreateQube(QubeClass.AppVM, "work", "blue", "fedora", Props(("netvm", "sys-firewall")), Dom0));
    }

    protected void CreateApp(string name, string? netvm = "sys-firewall", params (string Key, string Value)[] properties)
    {
        var props = Props(properties);
        props = props.SetItem("netvm", netvm ?? "");
        Ok(new CreateQube(QubeClass.AppVM, name, "yellow", "fedora", props, Dom0));
    }

    /// <summary>A probe subscribed to the event hub, subscription confirmed.</summary>
    protected TestProbe Subscribe(QubesHost? host = null)
    {
        host ??= Host;
        var probe = CreateTestProbe(host.System);
        host.Events.Tell(new EventHub.Subscribe(probe.Ref), probe.Ref);
        probe.ExpectMsg<EventHub.Subscribed>(T);
        return probe;
    }

    /// <summary>Notices in arrival order up to and including the first that matches <paramref name="last"/>.</summary>
    protected static List<QubesEventNotice> CollectUntil(TestProbe probe, Func<QubesEventNotice, bool> last, TimeSpan? timeout = null)
    {
        var seen = new List<QubesEventNotice>();
        var deadline = DateTime.UtcNow + (timeout ?? T);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                Assert.Fail($"timed out; notices so far: {string.Join(" | ", seen)}");
            var n = probe.ExpectMsg<QubesEventNotice>(left);
            seen.Add(n);
            if (last(n))
                return seen;
        }
    }

    protected static Func<QubesEventNotice, bool> Is(string subject, string name) => n => n.Subject == subject && n.Event == name;

    protected void AwaitPower(string name, PowerState state, QubesHost? host = null) =>
        AwaitAssert(() => Assert.Equal(state, (host ?? Host).Qube(name).Power), T, TimeSpan.FromMilliseconds(50));

    /// <summary>The backend calls made since <paramref name="from"/> (an index into <see cref="SimulatedBackend.Calls"/>).</summary>
    protected List<string> CallsSince(int from) => [.. Backend.Calls.Skip(from)];

    protected static void AssertError<TError>(QubesError error, string message) where TError : QubesError
    {
        Assert.IsType<TError>(error);
        Assert.Equal(message, error.Message);
    }
}
