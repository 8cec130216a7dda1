using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text.Json;
using QubesActors.Core.Model;

namespace QubesActors.Runtime.Backend;

/// <summary>Latencies and faults for the simulated backend.</summary>
public sealed record SimulatedBackendOptions
{
    public TimeSpan StartLatency { get; init; } = TimeSpan.Zero;
    public TimeSpan StopLatency { get; init; } = TimeSpan.Zero;
    public TimeSpan OpLatency { get; init; } = TimeSpan.Zero;
    /// <summary>Where the set of running domains is kept, so they "survive" a daemon restart; null = memory only.</summary>
    public string? StateFile { get; init; }
    /// <summary>Devices each backend domain exposes while it runs (dom0 always).</summary>
    public ImmutableDictionary<string, ImmutableArray<BackendDevice>> Devices { get; init; } = ImmutableDictionary<string, ImmutableArray<BackendDevice>>.Empty;
}

/// <summary>
/// An in-process stand-in for real isolation, for tests and benchmarks: configurable latencies and fault injection
/// (a start that fails, a domain that crashes after a delay, a shutdown that hangs, devices that come and go).
/// </summary>
public sealed class SimulatedBackend : IDomainBackend
{
    private readonly SimulatedBackendOptions _options;
    private readonly ConcurrentDictionary<string, RunningDomain> _domains = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _failNextStart = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TimeSpan> _crashAfterStart = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _hangShutdown = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ImmutableArray<BackendDevice>> _extraDevices = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Netvm, string Client), ClientFirewall> _firewalls = new();
    private readonly ConcurrentDictionary<string, string> _network = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ImmutableHashSet<string>> _attachedDevices = new(StringComparer.Ordinal);
    private readonly List<Action<BackendEvent>> _subscribers = [];
    private readonly Lock _gate = new();
    private readonly ConcurrentQueue<string> _calls = new();

    public SimulatedBackend(SimulatedBackendOptions? options = null)
    {
        _options = options ?? new SimulatedBackendOptions();
        LoadState();
    }

    public string Name => "simulated";

    // ---- fault injection and inspection (tests, benchmarks) ----

    public void FailNextStart(string name, string reason) => _failNextStart[name] = reason;
    public void CrashAfterStart(string name, TimeSpan delay) => _crashAfterStart[name] = delay;
    public void StopCrashing(string name) => _crashAfterStart.TryRemove(name, out _);
    public void HangShutdown(string name, bool hang = true) => _hangShutdown[name] = hang;

    /// <summary>Makes a running domain die now, as a crash or a power-off from inside.</summary>
    public void Crash(string name, string reason = "simulated crash", bool crashed = true)
    {
        if (_domains.TryRemove(name, out _))
        {
            Cleanup(name);
            SaveState();
            Publish(new BackendEvent.DomainDied(name, crashed, reason));
        }
    }

    public void AddDevice(BackendDevice device)
    {
        _extraDevices.AddOrUpdate(device.Backend, [device], (_, list) => list.Add(device));
        if (IsUp(device.Backend))
            Publish(new BackendEvent.DeviceAppeared(device.Backend, device));
    }

    public void RemoveDevice(BackendDevice device)
    {
        _extraDevices.AddOrUpdate(device.Backend, [], (_, list) => list.Remove(device));
        if (IsUp(device.Backend))
            Publish(new BackendEvent.DeviceVanished(device.Backend, device));
    }

    public bool IsRunning(string name) => _domains.TryGetValue(name, out var d) && d.State != PowerState.Halted;
    public PowerState StateOf(string name) => _domains.TryGetValue(name, out var d) ? d.State : PowerState.Halted;
    public string? NetworkOf(string client) => _network.TryGetValue(client, out var n) ? n : null;
    public ClientFirewall? FirewallOf(string netvm, string client) => _firewalls.TryGetValue((netvm, client), out var f) ? f : null;
    public IReadOnlyCollection<string> AttachedDevicesOf(string frontend) => _attachedDevices.TryGetValue(frontend, out var s) ? s : [];
    /// <summary>Every call in order, as "op name" lines: lets tests assert ordering (teardown, netvm chain).</summary>
    public IReadOnlyList<string> Calls => [.. _calls];
    public int StartCount(string name) => _calls.Count(c => c == $"start {name}");

    // ---- IDomainBackend ----

    public async Task StartAsync(DomainSpec spec, CancellationToken ct)
    {
        _calls.Enqueue($"start {spec.Name}");
        await Delay(_options.StartLatency, ct);
        if (_failNextStart.TryRemove(spec.Name, out var reason))
            throw new BackendException(reason);
        if (_domains.ContainsKey(spec.Name))
            throw new BackendException($"domain {spec.Name} is already running");
        if (spec.NetVm is { } netvm && !IsUp(netvm))
            throw new BackendException($"netvm {netvm} is not running");
        _domains[spec.Name] = new RunningDomain(spec.Uuid, spec.Name, PowerState.Running);
        // The domain comes up plumbed to its netvm (the actor records it as connected from qube.starting on).
        if (spec.NetVm is { } uplink)
            _network[spec.Name] = uplink;
        SaveState();
        if (_crashAfterStart.TryGetValue(spec.Name, out var after))
            _ = Task.Delay(after, CancellationToken.None).ContinueWith(_ => Crash(spec.Name, "simulated crash after start"), TaskScheduler.Default);
    }

    public async Task ShutdownAsync(string name, CancellationToken ct)
    {
        _calls.Enqueue($"shutdown {name}");
        if (_hangShutdown.TryGetValue(name, out var hang) && hang)
            await Task.Delay(Timeout.Infinite, ct);
        // The guest has the request now: it halts whether or not qubesd lives to see it (see LoadState).
        if (_domains.TryGetValue(name, out var d))
        {
            _domains[name] = d with { State = PowerState.Halting };
            SaveState();
        }
        await Delay(_options.StopLatency, ct);
        Stop(name);
    }

    public async Task KillAsync(string name, CancellationToken ct)
    {
        _calls.Enqueue($"kill {name}");
        await Delay(_options.OpLatency, ct);
        Stop(name);
    }

    public Task PauseAsync(string name, CancellationToken ct) => SetState(name, "pause", PowerState.Paused, ct);
    public Task UnpauseAsync(string name, CancellationToken ct) => SetState(name, "unpause", PowerState.Running, ct);

    public async Task<bool> SuspendAsync(string name, CancellationToken ct)
    {
        await SetState(name, "suspend", PowerState.Suspended, ct);
        return true;
    }

    public Task ResumeAsync(string name, CancellationToken ct) => SetState(name, "resume", PowerState.Running, ct);

    public async Task AttachNetworkAsync(string client, string netvm, CancellationToken ct)
    {
        _calls.Enqueue($"attach-network {client} {netvm}");
        await Delay(_options.OpLatency, ct);
        if (!IsUp(netvm))
            throw new BackendException($"netvm {netvm} is not running");
        _network[client] = netvm;
    }

    public async Task DetachNetworkAsync(string client, CancellationToken ct)
    {
        _calls.Enqueue($"detach-network {client}");
        await Delay(_options.OpLatency, ct);
        _network.TryRemove(client, out _);
    }

    public async Task ApplyFirewallAsync(string netvm, ClientFirewall rules, CancellationToken ct)
    {
        _calls.Enqueue($"firewall {netvm} {rules.Client}");
        await Delay(_options.OpLatency, ct);
        _firewalls[(netvm, rules.Client)] = rules;
    }

    public async Task RemoveFirewallAsync(string netvm, string client, CancellationToken ct)
    {
        _calls.Enqueue($"firewall-remove {netvm} {client}");
        await Delay(_options.OpLatency, ct);
        _firewalls.TryRemove((netvm, client), out _);
    }

    /// <summary>While set, device attaches wait for it (after the backend check) before they take effect.</summary>
    public TaskCompletionSource? DeviceAttachGate { get; set; }

    public async Task AttachDeviceAsync(string frontend, BackendDevice device, IReadOnlyDictionary<string, string> options, CancellationToken ct)
    {
        _calls.Enqueue($"attach-device {frontend} {device.Address}");
        await Delay(_options.OpLatency, ct);
        if (!IsUp(device.Backend))
            throw new BackendException($"backend {device.Backend} is not running");
        // A test holds an attach here to stop the backend while it is in flight (it then succeeds regardless, as a
        // real attach that raced the backend's shutdown would).
        if (DeviceAttachGate is { } gate)
            await gate.Task.WaitAsync(ct);
        _attachedDevices.AddOrUpdate(frontend, [device.Address], (_, s) => s.Add(device.Address));
    }

    public async Task DetachDeviceAsync(string frontend, BackendDevice device, CancellationToken ct)
    {
        _calls.Enqueue($"detach-device {frontend} {device.Address}");
        await Delay(_options.OpLatency, ct);
        _attachedDevices.AddOrUpdate(frontend, [], (_, s) => s.Remove(device.Address));
    }

    public Task<IReadOnlyList<RunningDomain>> ListDomainsAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<RunningDomain>>([.. _domains.Values]);

    public Task<IReadOnlyList<BackendDevice>> ListDevicesAsync(string backendDomain, CancellationToken ct)
    {
        if (!IsUp(backendDomain))
            return Task.FromResult<IReadOnlyList<BackendDevice>>([]);
        var configured = _options.Devices.TryGetValue(backendDomain, out var list) ? list : [];
        var extra = _extraDevices.TryGetValue(backendDomain, out var more) ? more : [];
        return Task.FromResult<IReadOnlyList<BackendDevice>>([.. configured, .. extra]);
    }

    public IDisposable Subscribe(Action<BackendEvent> onEvent)
    {
        lock (_gate)
            _subscribers.Add(onEvent);
        return new Subscription(() => { lock (_gate) _subscribers.Remove(onEvent); });
    }

    // ---- internals ----

    private bool IsUp(string name) => name == CollectionState.AdminName || IsRunning(name);

    private async Task SetState(string name, string op, PowerState state, CancellationToken ct)
    {
        _calls.Enqueue($"{op} {name}");
        await Delay(_options.OpLatency, ct);
        if (!_domains.TryGetValue(name, out var d))
            throw new BackendException($"domain {name} is not running");
        _domains[name] = d with { State = state };
        SaveState();
    }

    private void Stop(string name)
    {
        _domains.TryRemove(name, out _);
        Cleanup(name);
        SaveState();
    }

    private void Cleanup(string name)
    {
        _network.TryRemove(name, out _);
        _attachedDevices.TryRemove(name, out _);
        foreach (var key in _firewalls.Keys.Where(k => k.Netvm == name))
            _firewalls.TryRemove(key, out _);
    }

    private void Publish(BackendEvent e)
    {
        Action<BackendEvent>[] subscribers;
        lock (_gate)
            subscribers = [.. _subscribers];
        foreach (var s in subscribers)
            s(e);
    }

    private static Task Delay(TimeSpan latency, CancellationToken ct) =>
        latency > TimeSpan.Zero ? Task.Delay(latency, ct) : Task.CompletedTask;

    private void SaveState()
    {
        if (_options.StateFile is null)
            return;
        lock (_gate)
        {
            var tmp = _options.StateFile + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(_domains.Values.OrderBy(d => d.Name).ToArray()));
            File.Move(tmp, _options.StateFile, overwrite: true);
        }
    }

    private void LoadState()
    {
        if (_options.StateFile is null || !File.Exists(_options.StateFile))
            return;
        // A domain that was shutting down when the previous daemon died has finished halting since.
        foreach (var d in JsonSerializer.Deserialize<RunningDomain[]>(File.ReadAllText(_options.StateFile)) ?? [])
            if (d.State != PowerState.Halting)
                _domains[d.Name] = d;
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}

public sealed class BackendException(string message) : Exception(message);
