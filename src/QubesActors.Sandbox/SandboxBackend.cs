using System.Collections.Immutable;
using QubesActors.Core.Firewall;
using QubesActors.Core.Model;
using QubesActors.Runtime.Backend;
using QubesActors.Sandbox.Devices;
using QubesActors.Sandbox.Network;
using QubesActors.Sandbox.Storage;

namespace QubesActors.Sandbox;

/// <summary>
/// <see cref="IDomainBackend"/> on real sandboxes (<see cref="SandboxManager"/>) wired into the Qubes network
/// (<see cref="SandboxNetwork"/>): every qube starts in a namespace of its own, joined to its netvm's when it has one;
/// a netvm enforces each client's rules in its own namespace. Block devices are real (<see cref="BlockDevices"/>:
/// loop devices, nodes in the frontend's /dev); the other classes, without hardware here, stay simulated.
/// </summary>
public sealed class SandboxBackend : IDomainBackend, IDisposable
{
    private readonly SandboxManager _manager;
    private readonly SandboxNetwork _network;
    private readonly List<Action<BackendEvent>> _subscribers = [];
    private readonly object _gate = new();

    private readonly TemplateProvisioner? _templates;

    // Device classes without hardware here (pci, usb, mic...): listed while their backend runs, attached on record only.
    private readonly IReadOnlyDictionary<string, ImmutableArray<BackendDevice>> _simulatedDevices;

    private readonly BlockDevices _blocks;

    /// <param name="templates">Builds a template root missing at a qube's start; null = a missing root fails the start.</param>
    /// <param name="simulatedDevices">Devices of the classes that stay simulated, by backend domain (qubesd.simulated.devices).</param>
    public SandboxBackend(SandboxManager manager, SandboxNetwork network, TemplateProvisioner? templates = null,
        IReadOnlyDictionary<string, ImmutableArray<BackendDevice>>? simulatedDevices = null)
    {
        _simulatedDevices = simulatedDevices ?? ImmutableDictionary<string, ImmutableArray<BackendDevice>>.Empty;
        _blocks = new BlockDevices(name => Path.Combine(manager.Storage, "qubes", name, "run"));
        _blocks.Changed += Publish;
        _manager = manager;
        _network = network;
        _templates = templates;
        _manager.SandboxStopped += OnStopped;
    }

    public string Name => "sandbox";

    public SandboxManager Manager => _manager;

    public SandboxNetwork Network => _network;

    public BlockDevices Blocks => _blocks;

    /// <summary>
    /// Looks for block devices that appeared or vanished (dom0's loop devices, images running qubes expose) every
    /// <paramref name="interval"/> until cancelled; changes reach the subscribers as device events.
    /// </summary>
    public Task PollDevicesAsync(TimeSpan interval, CancellationToken ct) => _blocks.RunPollingAsync(interval, ct);

    private readonly CancellationTokenSource _polling = new();

    /// <summary><see cref="PollDevicesAsync"/> in the background until this backend is disposed.</summary>
    public void StartDevicePolling(TimeSpan interval) => _ = PollDevicesAsync(interval, _polling.Token);

    /// <summary>
    /// After a daemon restart (or a SIGKILL of it): takes over the sandboxes still running and their network, cleans
    /// what dead ones left. Returns the adopted names; none is restarted.
    /// </summary>
    public async Task<IReadOnlyList<string>> AdoptAsync(CancellationToken ct)
    {
        var adopted = await _manager.AdoptAsync(ct).ConfigureAwait(false);
        foreach (var name in adopted)
            _blocks.Watch(name);
        await Guard(() => _network.AdoptAsync(_manager.RunningNames, ct)).ConfigureAwait(false);
        return adopted;
    }

    public async Task StartAsync(DomainSpec spec, CancellationToken ct)
    {
        if (spec.Class == QubeClass.AdminVM)
            throw new BackendException("dom0 is not a sandbox");
        var template = spec.Class is QubeClass.TemplateVM or QubeClass.StandaloneVM ? null : spec.RootTemplate ?? spec.Template;
        if (_templates is not null)
        {
            var root = spec.Class switch
            {
                QubeClass.TemplateVM => SandboxVolumes.TemplateRoot(_manager.Storage, spec.Name),
                QubeClass.StandaloneVM => SandboxVolumes.For(_manager.Storage, spec.Name, spec.Class, null).Root,
                _ => SandboxVolumes.TemplateRoot(_manager.Storage, template ?? throw new BackendException($"{spec.Name} has no template")),
            };
            await Guard(() => _templates.EnsureAsync(root, ct)).ConfigureAwait(false);
        }
        var network = new SandboxNetworkSpec(spec.Name, spec.Qid, spec.DispId, spec.NetVm, spec.ProvidesNetwork);
        var ns = await Guard(() => _network.CreateAsync(network, ct)).ConfigureAwait(false);
        // The link, the netvm's tables and the chain are wired while the sandbox boots in its (empty) namespace: two
        // sets of processes in parallel instead of one after the other. The qube is Running when both are done.
        var wiring = Guard(() => _network.WireAsync(network, ct));
        var sandbox = Guard(() => _manager.StartAsync(new SandboxSpec(spec.Name, spec.Class, template,
            Math.Max(spec.MemoryMiB, spec.MaxMemMiB), NetNamespace: ns, Uuid: spec.Uuid, Vcpus: spec.Vcpus), ct));
        try
        {
            await Task.WhenAll(wiring, sandbox).ConfigureAwait(false);
        }
        catch
        {
            // Both have ended (WhenAll waits for both): undo what succeeded, report the failure.
            if (sandbox.IsCompletedSuccessfully)
                await _manager.KillAsync(spec.Name, CancellationToken.None).ConfigureAwait(false);
            await _network.ReleaseAsync(spec.Name, CancellationToken.None).ConfigureAwait(false);
            throw (wiring.Exception ?? sandbox.Exception)!.InnerException!;
        }
        // Any qube may expose block devices (images in its /run/qubes/block), as any Qubes VM may be a block backend.
        _blocks.Watch(spec.Name);
    }

    /// <summary>The caller applies shutdown_timeout; this asks the init and waits until the sandbox is gone.</summary>
    public async Task ShutdownAsync(string name, CancellationToken ct)
    {
        await Guard(() => _manager.ShutdownAsync(name, Timeout.InfiniteTimeSpan, ct)).ConfigureAwait(false);
        await ReleaseAsync(name).ConfigureAwait(false);
    }

    public async Task KillAsync(string name, CancellationToken ct)
    {
        // Already gone (it died while the actors were not looking): killed is what was asked.
        if (_manager.RunningNames.Contains(name))
            await Guard(() => _manager.KillAsync(name, ct)).ConfigureAwait(false);
        await ReleaseAsync(name).ConfigureAwait(false);
    }

    /// <summary>What a stopped sandbox held outside itself: its network, its attached devices, the devices it exposed.</summary>
    private async Task ReleaseAsync(string name)
    {
        await _network.ReleaseAsync(name, CancellationToken.None).ConfigureAwait(false);
        await _blocks.ForgetFrontendAsync(name).ConfigureAwait(false);
        await _blocks.BackendStoppedAsync(name).ConfigureAwait(false);
    }

    public Task PauseAsync(string name, CancellationToken ct) => Run(() => _manager.Pause(name));

    public Task UnpauseAsync(string name, CancellationToken ct) => Run(() => _manager.Unpause(name));

    /// <summary>A sandbox has no S3: it is paused instead (Qubes does the same for a domain without suspend support).</summary>
    public async Task<bool> SuspendAsync(string name, CancellationToken ct)
    {
        await PauseAsync(name, ct).ConfigureAwait(false);
        return false;
    }

    public Task ResumeAsync(string name, CancellationToken ct) => UnpauseAsync(name, ct);

    public Task AttachNetworkAsync(string client, string netvm, CancellationToken ct) => Guard(() => _network.AttachAsync(client, netvm, ct));

    public Task DetachNetworkAsync(string client, CancellationToken ct) => Guard(() => _network.DetachAsync(client, ct));

    /// <summary>
    /// Replaces the client's chain in the netvm. Rules that do not parse (they were validated when set, so only a
    /// damaged journal gives such) fail closed: the chain drops everything.
    /// </summary>
    public async Task ApplyFirewallAsync(string netvm, ClientFirewall rules, CancellationToken ct)
    {
        FirewallRules parsed;
        string? problem = null;
        try
        {
            parsed = new FirewallRules(rules.Rules.Select(FirewallRule.Parse));
        }
        catch (Exception e) when (e is FormatException or ArgumentException or QubesActors.Core.Errors.QubesError)
        {
            parsed = FirewallRules.Empty;
            problem = e.Message;
        }
        var chain = await Guard(() => _network.ApplyFirewallAsync(netvm, rules.Client, rules.ClientIp, parsed, ct)).ConfigureAwait(false);
        problem ??= chain is { FailedClosed: true } ? string.Join("; ", chain.Problems) : null;
        if (problem is not null)
            throw new BackendException($"firewall of {rules.Client} at {netvm} fails closed (everything dropped): {problem}");
    }

    public Task RemoveFirewallAsync(string netvm, string client, CancellationToken ct) => Guard(() => _network.RemoveFirewallAsync(netvm, client, ct));

    public async Task AttachDeviceAsync(string frontend, BackendDevice device, IReadOnlyDictionary<string, string> options, CancellationToken ct)
    {
        if (!IsUp(device.Backend))
            throw new BackendException($"backend {device.Backend} is not running");
        if (!_manager.RunningNames.Contains(frontend))
            throw new BackendException($"{frontend} is not running");
        if (device.DeviceClass != "block")
            return; // simulated classes: the attachment is the actors' record
        try
        {
            await _blocks.AttachAsync(frontend, _manager.InitPidOf(frontend), device, BlockAttachOptions.Parse(options), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BlockDeviceException or SandboxException or IOException)
        {
            throw new BackendException(e.Message);
        }
    }

    public async Task DetachDeviceAsync(string frontend, BackendDevice device, CancellationToken ct)
    {
        if (device.DeviceClass != "block")
            return;
        try
        {
            await _blocks.DetachAsync(frontend, device, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BlockDeviceException or IOException)
        {
            throw new BackendException(e.Message);
        }
    }

    public Task<IReadOnlyList<RunningDomain>> ListDomainsAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<RunningDomain>>([.. _manager.RunningNames.Select(name =>
            new RunningDomain(_manager.SpecOf(name)?.Uuid ?? Guid.Empty, name, IsPaused(name) ? PowerState.Paused : PowerState.Running))]);

    public async Task<IReadOnlyList<BackendDevice>> ListDevicesAsync(string backendDomain, CancellationToken ct)
    {
        if (!IsUp(backendDomain))
            throw new BackendException($"backend {backendDomain} is not running");
        IReadOnlyList<BackendDevice> simulated = _simulatedDevices.TryGetValue(backendDomain, out var devices)
            ? [.. devices.Where(d => d.DeviceClass != "block")]
            : [];
        return [.. simulated, .. await _blocks.ListAsync(backendDomain, ct).ConfigureAwait(false)];
    }

    private bool IsUp(string domain) => domain == "dom0" || _manager.RunningNames.Contains(domain);

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

    /// <summary>
    /// A stop nobody asked for is a death the actors must hear about (asked ones they already know, and those release
    /// their network themselves). The network goes first, so a restart the actors decide finds none of it left.
    /// </summary>
    private void OnStopped(SandboxExited exited)
    {
        if (exited.Requested)
            return;
        ReleaseAsync(exited.Name).ContinueWith(_ => Publish(new BackendEvent.DomainDied(exited.Name, Crashed: true, exited.Reason)),
            TaskScheduler.Default);
    }

    private void Publish(BackendEvent e)
    {
        Action<BackendEvent>[] subscribers;
        lock (_gate)
            subscribers = [.. _subscribers];
        foreach (var subscriber in subscribers)
            subscriber(e);
    }

    /// <summary>Machine-side failures reach the actors as <see cref="BackendException"/>s with the machine's message.</summary>
    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SandboxException or NetworkPlanException or NetworkCommandException or IOException or TimeoutException)
        {
            throw new BackendException(e.Message);
        }
    }

    private static Task Guard(Func<Task> call) => Guard(async () =>
    {
        await call().ConfigureAwait(false);
        return true;
    });

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


    public void Dispose()
    {
        _polling.Cancel();
        _manager.SandboxStopped -= OnStopped;
    }

    private sealed class Unsubscriber(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
