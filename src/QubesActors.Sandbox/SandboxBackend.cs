using QubesActors.Core.Model;
using QubesActors.Runtime.Backend;

namespace QubesActors.Sandbox;

/// <summary>
/// <see cref="IDomainBackend"/> on real sandboxes (<see cref="SandboxManager"/>). So far: the lifecycle of qubes
/// without a netvm (start, shutdown, kill, pause/unpause, suspend as pause, crash reports, listing for reconciliation).
/// Networking, firewalls and devices are not wired yet and fail closed: a qube with a netvm does not start, rather
/// than start without the firewall its netvm must enforce.
/// </summary>
public sealed class SandboxBackend : IDomainBackend, IDisposable
{
    private readonly SandboxManager _manager;
    private readonly List<Action<BackendEvent>> _subscribers = [];
    private readonly object _gate = new();

    public SandboxBackend(SandboxManager manager)
    {
        _manager = manager;
        _manager.SandboxStopped += OnStopped;
    }

    public string Name => "sandbox";

    public async Task StartAsync(DomainSpec spec, CancellationToken ct)
    {
        if (spec.NetVm is not null)
            throw new BackendException($"{spec.Name}: the sandbox backend cannot connect a qube to its netvm ({spec.NetVm}) yet; set netvm to none");
        if (spec.Class == QubeClass.AdminVM)
            throw new BackendException("dom0 is not a sandbox");
        await _manager.StartAsync(new SandboxSpec(spec.Name, spec.Class, spec.Template, Math.Max(spec.MemoryMiB, spec.MaxMemMiB), Uuid: spec.Uuid), ct)
            .ConfigureAwait(false);
    }

    /// <summary>The caller applies shutdown_timeout; this asks the init and waits until the sandbox is gone.</summary>
    public Task ShutdownAsync(string name, CancellationToken ct) => _manager.ShutdownAsync(name, Timeout.InfiniteTimeSpan, ct);

    public Task KillAsync(string name, CancellationToken ct) => _manager.KillAsync(name, ct);

    public Task PauseAsync(string name, CancellationToken ct) => Run(() => _manager.Pause(name));

    public Task UnpauseAsync(string name, CancellationToken ct) => Run(() => _manager.Unpause(name));

    /// <summary>A sandbox has no S3: it is paused instead (Qubes does the same for a domain without suspend support).</summary>
    public async Task<bool> SuspendAsync(string name, CancellationToken ct)
    {
        await PauseAsync(name, ct).ConfigureAwait(false);
        return false;
    }

    public Task ResumeAsync(string name, CancellationToken ct) => UnpauseAsync(name, ct);

    public Task AttachNetworkAsync(string client, string netvm, CancellationToken ct) => NotYet("networking");

    public Task DetachNetworkAsync(string client, CancellationToken ct) => Task.CompletedTask;

    public Task ApplyFirewallAsync(string netvm, ClientFirewall rules, CancellationToken ct) => NotYet("the firewall");

    public Task RemoveFirewallAsync(string netvm, string client, CancellationToken ct) => Task.CompletedTask;

    public Task AttachDeviceAsync(string frontend, BackendDevice device, CancellationToken ct) => NotYet("devices");

    public Task DetachDeviceAsync(string frontend, BackendDevice device, CancellationToken ct) => Task.CompletedTask;

    public Task<IReadOnlyList<RunningDomain>> ListDomainsAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<RunningDomain>>([.. _manager.RunningNames.Select(name =>
            new RunningDomain(_manager.SpecOf(name)?.Uuid ?? Guid.Empty, name, IsPaused(name) ? PowerState.Paused : PowerState.Running))]);

    public Task<IReadOnlyList<BackendDevice>> ListDevicesAsync(string backendDomain, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<BackendDevice>>([]);

    public IDisposable Subscribe(Action<BackendEvent> onEvent)
    {
        lock (_gate)
            _subscribers.Add(onEvent);
        return new Unsubscriber(() => { lock (_gate) _subscribers.Remove(onEvent); });
    }

    private bool IsPaused(string name)
    {
        try
        {
            return _manager.IsPaused(name);
        }
        catch (SandboxException)
        {
            return false;
        }
    }

    /// <summary>A stop nobody asked for is a death the actors must hear about; asked ones they already know.</summary>
    private void OnStopped(SandboxExited exited)
    {
        if (exited.Requested)
            return;
        Action<BackendEvent>[] subscribers;
        lock (_gate)
            subscribers = [.. _subscribers];
        foreach (var s in subscribers)
            s(new BackendEvent.DomainDied(exited.Name, Crashed: true, exited.Reason));
    }

    private static Task Run(Action action)
    {
        try
        {
            action();
            return Task.CompletedTask;
        }
        catch (Exception e) when (e is SandboxException or IOException or TimeoutException)
        {
            return Task.FromException(new BackendException(e.Message));
        }
    }

    private static Task NotYet(string what) => Task.FromException(new BackendException($"the sandbox backend does not support {what} yet"));

    public void Dispose() => _manager.SandboxStopped -= OnStopped;

    private sealed class Unsubscriber(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
