using System.Collections.Immutable;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using QubesActors.Core.Model;
using QubesActors.Daemon;
using QubesActors.Runtime.Settings;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;

namespace QubesActors.Bench;

/// <summary>Where a bench's journal lives: a state dir, and for PostgreSQL a database of its own.</summary>
public sealed record BenchStore(string Provider, string StateDir, string? ConnectionString)
{
    public const string Template = "bench-tpl";

    /// <summary>The --set overrides that select this store (and a layout holding only the bench template).</summary>
    public string[] Sets()
    {
        var layout = Path.Combine(StateDir, "bench-layout.json");
        if (!File.Exists(layout))
        {
            Directory.CreateDirectory(StateDir);
            File.WriteAllText(layout, $$"""{ "qubes": [ { "name": "{{Template}}", "class": "TemplateVM", "label": "black" } ], "globals": { } }""");
        }
        var sets = new List<string> { "akka.loglevel=WARNING", $"qubesd.layout={layout}", $"qubesd.journal.provider={Provider}" };
        if (ConnectionString is not null)
            sets.Add($"qubesd.journal.connection-string={ConnectionString}");
        return [.. sets];
    }

    public DaemonSettings Settings() => DaemonSettings.Load(null, StateDir, Sets(), new Dictionary<string, string?>());

    /// <summary>A fresh store: a new temp dir, and for PostgreSQL a new database on the given server.</summary>
    public static async Task<BenchStore> CreateAsync(string provider, string? serverConnectionString, string tag)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"qubes-bench-{tag}-{Environment.ProcessId}-{Guid.NewGuid():N}"[..^20]);
        Directory.CreateDirectory(dir);
        if (provider == "sqlite")
            return new BenchStore(provider, dir, null);
        if (string.IsNullOrEmpty(serverConnectionString))
            throw new InvalidOperationException("postgresql needs --connection-string or QUBES_TEST_POSTGRES");
        var db = $"qbench_{tag}_{Environment.ProcessId}_{Random.Shared.Next(100000)}".ToLowerInvariant();
        var admin = new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = "postgres", Pooling = false };
        await using (var c = new NpgsqlConnection(admin.ToString()))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {db}", c);
            await cmd.ExecuteNonQueryAsync();
        }
        return new BenchStore(provider, dir, new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = db }.ToString());
    }

    public async Task DropAsync()
    {
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
        }
        if (ConnectionString is null)
            return;
        NpgsqlConnection.ClearAllPools();
        var b = new NpgsqlConnectionStringBuilder(ConnectionString);
        var db = b.Database;
        b.Database = "postgres";
        b.Pooling = false;
        await using var c = new NpgsqlConnection(b.ToString());
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {db} WITH (FORCE)", c);
        await cmd.ExecuteNonQueryAsync();
    }

    public long CountJournalRows()
    {
        var journal = Settings().Journal;
        using var c = journal.OpenConnection();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM journal";
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>The real qubesd host (QubesHost.Build) on the zero-latency simulated backend, quiet.</summary>
public sealed class RunningHost : IAsyncDisposable
{
    private readonly IHost _host;

    private RunningHost(IHost host, IActorRef qubes)
    {
        _host = host;
        Qubes = qubes;
    }

    public IActorRef Qubes { get; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    public static IHost Build(DaemonSettings settings)
    {
        // Memory only: no backend state file (a benchmark must not rewrite a JSON file per operation).
        var backend = new SimulatedBackend(settings.SimulatedBackendOptions() with { StateFile = null });
        return QubesHost.Build(settings, backend, logging => logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
    }

    public static async Task<RunningHost> StartAsync(BenchStore store)
    {
        var host = Build(store.Settings());
        await host.StartAsync();
        var registry = host.Services.GetRequiredService<ActorRegistry>();
        var qubes = await registry.GetAsync<QubesKey>();
        var running = new RunningHost(host, qubes);
        await running.WaitForTemplateAsync();
        return running;
    }

    /// <summary>Ready, and on a first start the bench layout (the template) created by StartupService.</summary>
    private async Task WaitForTemplateAsync()
    {
        await Qubes.Ask<QubesProtocol.Ready>(new QubesProtocol.WaitUntilReady(), Timeout);
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            var snapshot = await Qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), Timeout);
            if (snapshot.State.Find(BenchStore.Template) is not null)
                return;
            await Task.Delay(20);
        }
        throw new TimeoutException("the bench layout was not created");
    }

    public Task<QubesProtocol.CommandResult> Ask(QubesProtocol.IQubesCommand command) =>
        Qubes.Ask<QubesProtocol.CommandResult>(command, Timeout);

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}

public static class Commands
{
    public static readonly Caller Caller = Caller.Dom0;

    public static string NameOf(int i) => $"bq{i:D5}";

    public static QubesProtocol.CreateQube Create(int i) =>
        new(QubeClass.AppVM, NameOf(i), "red", BenchStore.Template, ImmutableDictionary<string, string>.Empty.Add("netvm", ""), Caller);
}

/// <summary>Runs <paramref name="count"/> jobs with at most <paramref name="concurrency"/> in flight.</summary>
public static class Parallel
{
    public static async Task RunAsync(int count, int concurrency, Func<int, Task> job)
    {
        var next = -1;
        var workers = Enumerable.Range(0, Math.Min(concurrency, Math.Max(1, count))).Select(async _ =>
        {
            await Task.Yield();
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
                await job(i);
        });
        await Task.WhenAll(workers);
    }
}
