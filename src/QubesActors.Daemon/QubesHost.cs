using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Hosting;
using LinqToDB;
using LinqToDB.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using QubesActors.AdminApi.Methods;
using QubesActors.AdminApi.Server;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;

namespace QubesActors.Daemon;

/// <summary>Marker keys for the actors in Akka.Hosting's registry.</summary>
public sealed class QubesKey;
public sealed class EventsKey;
public sealed class PolicyKey;

/// <summary>Composes qubesd: Microsoft.Extensions.Hosting + Akka.Hosting, the SQL journal, the backend, the actor tree.</summary>
public static class QubesHost
{
    /// <param name="adminApi">When set, the Admin API socket is served once the actors are ready.</param>
    /// <param name="policy">When set, /user/policy decides qrexec calls (and serves its socket when it names one).</param>
    public static IHost Build(DaemonSettings settings, IDomainBackend backend, Action<ILoggingBuilder>? logging = null, AdminApiHosting? adminApi = null,
        PolicyHosting? policy = null, Qrexec.IQrexecHosting? qrexec = null)
    {
        // Plugins initialise with blocking calls (database connections, table creation) on the thread pool; with the
        // default minimum of one thread per core, 2 cores stall until the pool grows (~0.5 s a step). Start wider.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), Math.Max(io, 16));
        Directory.CreateDirectory(settings.StateDir);
        settings.Journal.EnsureStorage();
        // Read the journal while the host and the actor system start: recovery is on the critical path of every start.
        // Its own thread: on 2 cores a blocking read on the thread pool starves the actors until the pool grows (~0.5 s).
        var preloaded = Task.Factory.StartNew(() => JournalLoader.Load(settings.Journal), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var firstLoad = 1;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (logging is null)
            builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        else
            logging(builder.Logging);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(backend);
        builder.Services.AddAkka("qubesd", (akka, _) =>
        {
            akka.AddHocon(settings.Config, HoconAddMode.Prepend);
            akka.AddHocon(RuntimeConfig.Serialization, HoconAddMode.Prepend);
            akka.WithSqlPersistence(DataOptionsFor(settings.Journal), autoInitialize: true, tagStorageMode: TagMode.Csv);
            akka.WithActors((system, registry) =>
            {
                var events = system.ActorOf(Props.Create<EventHub>(), "events");
                var persistence = Akka.Persistence.Persistence.Instance.Apply(system);
                var journal = persistence.JournalFor(null);
                // The snapshot store plugin takes a few hundred ms to create, under a lock every qube actor's first
                // lookup would wait on: create it now, beside the journal read, not during the spawn of the actors.
                Task.Factory.StartNew(() => persistence.SnapshotStoreFor(null), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                    .ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                var qubes = system.ActorOf(QubesSupervisor.Props(backend, events, journal,
                    // The preloaded journal serves the first recovery only; a restarted supervisor reads afresh.
                    () => Interlocked.Exchange(ref firstLoad, 0) == 1 ? preloaded.GetAwaiter().GetResult() : JournalLoader.Load(settings.Journal)), "qubes");
                var sealer = system.ActorOf(JournalSealer.Props(settings.Journal, journal, settings.SealInterval, settings.SealGapTimeout), "journal-sealer");
                // A clean stop seals what was written last, so the newest events are vouched for right away.
                CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "seal-journal", async () =>
                {
                    try
                    {
                        await sealer.Ask<JournalSealer.SealRoundDone>(new JournalSealer.SealNow(), TimeSpan.FromSeconds(5));
                    }
                    catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
                    {
                        // The next start seals them.
                    }
                    return Akka.Done.Instance;
                });
                registry.Register<EventsKey>(events);
                registry.Register<QubesKey>(qubes);
                if (policy is not null)
                    registry.Register<PolicyKey>(system.ActorOf(PolicyActor.Props(policy.Engine, policy.Directories, qubes, journal, policy.ReloadDelay), "policy"));
            });
        });
        builder.Services.AddHostedService<StartupService>();
        if (adminApi is not null)
        {
            // Registered after Akka: hosted services stop in reverse order, so the socket closes before the actors stop.
            builder.Services.AddSingleton(adminApi);
            builder.Services.AddSingleton<AdminSocketService>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<AdminSocketService>());
        }
        if (qrexec is not null && policy is not null)
        {
            builder.Services.AddSingleton(qrexec);
            builder.Services.AddHostedService<Qrexec.QrexecHostedService>();
        }
        if (policy?.SocketPath is not null)
        {
            builder.Services.AddSingleton(policy);
            builder.Services.AddSingleton<PolicySocketService>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<PolicySocketService>());
        }
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder.Build();
    }

    /// <summary>linq2db options with the SQLite per-connection tuning (docs/akka-stack.md §2).</summary>
    public static DataOptions DataOptionsFor(JournalSettings journal)
    {
        var options = new DataOptions().UseConnectionString(journal.Linq2DbProvider, journal.ConnectionString);
        if (journal.Provider != JournalProvider.Sqlite)
            return options;
        return options.UseAfterConnectionOpened(
            connection => JournalSettings.Execute(connection, JournalSettings.SqlitePragmas),
            async (connection, ct) =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = JournalSettings.SqlitePragmas;
                await command.ExecuteNonQueryAsync(ct);
            });
    }
}

/// <summary>Waits for recovery, creates the layout on a first start, and reports readiness.</summary>
public sealed class StartupService(ActorRegistry registry, DaemonSettings settings, ILogger<StartupService> log, IHostApplicationLifetime lifetime,
    IServiceProvider services) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var qubes = await registry.GetAsync<QubesKey>(stoppingToken);
        var ready = await qubes.Ask<QubesProtocol.Ready>(new QubesProtocol.WaitUntilReady(), TimeSpan.FromMinutes(5), stoppingToken);
        log.LogInformation("recovered {Qubes} qubes ({Quarantined} quarantined) in {Ms:0} ms", ready.Qubes, ready.Quarantined, ready.RecoveryTime.TotalMilliseconds);
        if (ready.JournalWasEmpty)
        {
            var layout = LayoutFile.Load(settings.LayoutFile);
            var result = await qubes.Ask<QubesProtocol.CommandResult>(new QubesProtocol.InitializeLayout(layout), TimeSpan.FromMinutes(5), stoppingToken);
            if (result is QubesProtocol.Refused refused)
            {
                log.LogCritical("creating the default layout failed: {Error}", refused.Error.Message);
                Environment.ExitCode = 1;
                lifetime.StopApplication();
                return;
            }
            log.LogInformation("created the layout from {Layout}: {Count} qubes", settings.LayoutFile, layout.Qubes.Length);
            // Autostart of a fresh layout, as on a first boot.
            foreach (var q in layout.Qubes.Where(q => q.Properties.TryGetValue("autostart", out var a) && a == "True"))
            {
                var started = await qubes.Ask<QubesProtocol.CommandResult>(new QubesProtocol.StartQube(q.Name, Caller.Dom0), TimeSpan.FromMinutes(5), stoppingToken);
                if (started is QubesProtocol.Refused r)
                    log.LogWarning("autostart of {Qube} failed: {Error}", q.Name, r.Error.Message);
            }
        }
        if (services.GetService<AdminSocketService>() is { } adminApi)
        {
            try
            {
                registry.TryGet<PolicyKey>(out var policyActor);
                adminApi.Serve(services.GetRequiredService<ActorSystem>(), qubes, await registry.GetAsync<EventsKey>(stoppingToken), policyActor);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or AdminSocketInUseException or UnauthorizedAccessException
                                           or ArgumentException /* path too long for sockaddr_un */)
            {
                log.LogCritical("cannot serve the Admin API on {Socket}: {Error}", adminApi.SocketPath, e.Message);
                Environment.ExitCode = 3;
                lifetime.StopApplication();
                return;
            }
            log.LogInformation("Admin API on {Socket}", adminApi.SocketPath);
        }
        if (services.GetService<PolicySocketService>() is { } policySocket)
        {
            try
            {
                policySocket.Serve(await registry.GetAsync<PolicyKey>(stoppingToken));
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or AdminSocketInUseException or UnauthorizedAccessException or ArgumentException)
            {
                log.LogCritical("cannot serve the policy socket on {Socket}: {Error}", policySocket.SocketPath, e.Message);
                Environment.ExitCode = 3;
                lifetime.StopApplication();
                return;
            }
            log.LogInformation("qrexec policy socket on {Socket}", policySocket.SocketPath);
        }
        if (services.GetService<Qrexec.IQrexecHosting>() is { } qrexec)
        {
            try
            {
                qrexec.Serve(qubes, await registry.GetAsync<PolicyKey>(stoppingToken), log);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException or ArgumentException)
            {
                log.LogCritical("cannot serve qrexec on {Socket}: {Error}", qrexec.Dom0Socket, e.Message);
                Environment.ExitCode = 3;
                lifetime.StopApplication();
                return;
            }
            log.LogInformation("qrexec: every sandbox's channel, dom0's socket on {Socket}", qrexec.Dom0Socket);
        }
        log.LogInformation("qubesd ready (state dir {StateDir}, journal {Provider})", settings.StateDir, settings.Journal.Provider);
        Console.Out.WriteLine("qubesd: ready");
        Console.Out.Flush();
    }
}

/// <summary>Where and how qubesd serves the Admin API: --socket, else qubesd.socket, else &lt;state-dir&gt;/qubesd.sock.</summary>
public sealed record AdminApiHosting(string SocketPath, TimeSpan ReadTimeout, int MaxConnections, TimeSpan CommandTimeout, string SocketGroup = "qubes")
{
    public static AdminApiHosting From(DaemonSettings settings, string? socketOption)
    {
        return new AdminApiHosting(
            !string.IsNullOrEmpty(socketOption) ? Path.GetFullPath(socketOption) : settings.SocketPath,
            settings.Config.GetTimeSpan("qubesd.admin-api.read-timeout", TimeSpan.FromSeconds(30)),
            settings.Config.GetInt("qubesd.admin-api.max-connections", 64),
            settings.Config.GetTimeSpan("qubesd.admin-api.command-timeout", TimeSpan.FromMinutes(2)),
            settings.Config.GetString("qubesd.admin-api.socket-group", "qubes"));
    }
}

/// <summary>Owns the socket server: started by <see cref="StartupService"/> when the actors are ready, closed first on shutdown.</summary>
public sealed class AdminSocketService(AdminApiHosting hosting, ILogger<AdminSocketService> log) : IHostedService
{
    private AdminSocketServer? _server;

    public string SocketPath => hosting.SocketPath;

    public void Serve(ActorSystem system, IActorRef qubes, IActorRef events, IActorRef? policy = null)
    {
        var dispatcher = new AdminDispatcher(new ActorQubesGateway(system, qubes, events) { PolicyActor = policy }, MethodTable.Default, hosting.CommandTimeout);
        var server = new AdminSocketServer(new AdminServerOptions
        {
            SocketPath = hosting.SocketPath,
            ReadTimeout = hosting.ReadTimeout,
            MaxConnections = hosting.MaxConnections,
            SocketGroup = hosting.SocketGroup,
            Log = message => log.LogWarning("{Message}", message),
        }, dispatcher);
        server.Start();
        _server = server;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is { } server)
            await server.DisposeAsync();
    }
}

/// <summary>
/// The qrexec policy of this daemon: its language, its directories (the seed directory installed into the runtime one),
/// and the policy socket (--policy-socket, else qubesd.policy.socket; null = not served).
/// </summary>
public sealed record PolicyHosting(IPolicyEngine Engine, PolicyDirectories Directories, string? SocketPath, string SocketGroup, TimeSpan ReloadDelay)
{
    public static PolicyHosting From(DaemonSettings settings, string? socketOption)
    {
        var configured = settings.Config.GetString("qubesd.policy.socket", "");
        var socket = !string.IsNullOrEmpty(socketOption) ? socketOption : configured;
        var dirs = settings.PolicyDirectories;
        if (settings.PolicySeedDir is { } seed)
            PolicyFiles.Seed(seed, dirs.RuntimeDir);
        return new PolicyHosting(new QrexecPolicyEngine(settings.PolicyCompatDir), dirs,
            string.IsNullOrEmpty(socket) ? null : Path.GetFullPath(socket),
            settings.Config.GetString("qubesd.policy.socket-group", "qubes"),
            settings.Config.GetTimeSpan("qubesd.policy.reload-delay", TimeSpan.FromMilliseconds(200)));
    }
}

/// <summary>Owns the policy socket: started once the actors are ready, closed before they stop.</summary>
public sealed class PolicySocketService(PolicyHosting hosting, ILogger<PolicySocketService> log) : IHostedService
{
    private PolicySocketServer? _server;

    public string SocketPath => hosting.SocketPath!;

    public void Serve(IActorRef policy)
    {
        var server = new PolicySocketServer(new PolicySocketOptions
        {
            SocketPath = SocketPath,
            SocketGroup = hosting.SocketGroup,
            Log = message => log.LogWarning("{Message}", message),
        }, (request, options, caller, ct) =>
            policy.Ask<PolicyOutcome>(new PolicyProtocol.EvaluatePolicy(request, options, caller), TimeSpan.FromSeconds(30), ct));
        server.Start();
        _server = server;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is { } server)
            await server.DisposeAsync();
    }
}
