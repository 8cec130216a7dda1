using System.Collections.Immutable;
using QubesActors.Core.Model;

namespace QubesActors.Runtime.Backend;

/// <summary>
/// What a backend needs to run a domain; computed by the qube actor from the collection at start time.
/// <paramref name="DispId"/>: a disposable's id (its address is 10.138.x.y from it). <paramref name="RootTemplate"/>:
/// the TemplateVM whose root the domain runs on, at the end of the template chain (a disposable's template is its
/// disposable template, an AppVM, whose template holds the root).
/// </summary>
public sealed record DomainSpec(
    Guid Uuid,
    string Name,
    QubeClass Class,
    int Qid,
    string? Template,
    string? NetVm,
    string Ip,
    int MemoryMiB,
    int MaxMemMiB,
    int Vcpus,
    bool ProvidesNetwork,
    int? DispId = null,
    string? RootTemplate = null);

/// <summary>A domain the backend reports as existing, for reconciliation after a daemon restart.</summary>
public sealed record RunningDomain(Guid Uuid, string Name, PowerState State);

/// <summary>
/// A device a backend domain exposes: what the backend reports about it (vendor, product, interface codes such as
/// <c>u080650</c>; empty when unknown) besides a human-readable name.
/// </summary>
public sealed record BackendDevice(string DeviceClass, string Backend, string Port, string DeviceId, string Description,
    string? Vendor = null, string? Product = null, string Interfaces = "")
{
    public string Address => $"{Backend}:{Port}";
}

/// <summary>One firewall rule set as the netvm must enforce it for one client.</summary>
public sealed record ClientFirewall(string Client, string ClientIp, ImmutableArray<string> Rules);

public abstract record BackendEvent(string Domain)
{
    /// <summary>The domain stopped without being asked (crash or power-off from inside).</summary>
    public sealed record DomainDied(string Domain, bool Crashed, string Reason) : BackendEvent(Domain);
    public sealed record DeviceAppeared(string Domain, BackendDevice Device) : BackendEvent(Domain);
    public sealed record DeviceVanished(string Domain, BackendDevice Device) : BackendEvent(Domain);
}

/// <summary>
/// The isolation backend. Every call is async and may be slow; the actors never block on it (results come back as
/// messages). Implementations: <see cref="SimulatedBackend"/> now, the Linux sandbox later.
/// </summary>
public interface IDomainBackend
{
    string Name { get; }
    Task StartAsync(DomainSpec spec, CancellationToken ct);
    /// <summary>Graceful shutdown; completes when the domain is down (the caller applies shutdown_timeout).</summary>
    Task ShutdownAsync(string name, CancellationToken ct);
    Task KillAsync(string name, CancellationToken ct);
    Task PauseAsync(string name, CancellationToken ct);
    Task UnpauseAsync(string name, CancellationToken ct);
    /// <summary>S3 suspend; returns false when the domain cannot do S3 and was paused instead.</summary>
    Task<bool> SuspendAsync(string name, CancellationToken ct);
    Task ResumeAsync(string name, CancellationToken ct);
    Task AttachNetworkAsync(string client, string netvm, CancellationToken ct);
    Task DetachNetworkAsync(string client, CancellationToken ct);
    /// <summary>Replaces the rules the netvm enforces for one client (one chain per client).</summary>
    Task ApplyFirewallAsync(string netvm, ClientFirewall rules, CancellationToken ct);
    Task RemoveFirewallAsync(string netvm, string client, CancellationToken ct);
    /// <summary>Attaches with the assignment's options (e.g. <c>read-only</c>), which the backend validates as Qubes does.</summary>
    Task AttachDeviceAsync(string frontend, BackendDevice device, IReadOnlyDictionary<string, string> options, CancellationToken ct);
    Task DetachDeviceAsync(string frontend, BackendDevice device, CancellationToken ct);
    Task<IReadOnlyList<RunningDomain>> ListDomainsAsync(CancellationToken ct);
    Task<IReadOnlyList<BackendDevice>> ListDevicesAsync(string backendDomain, CancellationToken ct);
    /// <summary>Subscribes to backend reports; the callback must not block (actors Tell themselves).</summary>
    IDisposable Subscribe(Action<BackendEvent> onEvent);
}
