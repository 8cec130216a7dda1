using System.Net;
using System.Text.Json;
using QubesActors.Core.Firewall;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// Where the edge netvm (a netvm without a netvm of its own, e.g. sys-net) reaches the outside: an existing network
/// namespace (<see cref="Namespace"/>; the tests' stand-in for the world, or <c>ip netns attach</c> of a real one),
/// the two ends' addresses, and the resolvers the virtual DNS is redirected to. Without one, the edge netvm has no
/// uplink: its clients reach each other's netvms and nothing beyond, and DNS is dropped (fail closed).
/// </summary>
public sealed record UplinkSettings(string Namespace, IPAddress UplinkAddress, IPAddress NetVmAddress, int PrefixLength, IReadOnlyList<IPAddress> Dns);

/// <summary>What the network layer keeps of a running qube, on disk so a new qubesd re-adopts its links.</summary>
public sealed record SandboxNetworkSpec(string Name, int Qid, int? DispId, string? NetVm, bool ProvidesNetwork)
{
    public NetworkDomain Domain(string? netVm) => new(Name, Qid, DispId, netVm, ProvidesNetwork);
}

/// <summary>
/// The live Qubes network of the sandbox backend: each running qube's namespace, each netvm's tables, each client's
/// link and firewall chain. Every change goes through one gate, in the order asked (the shell commands are quick and
/// a half-applied topology must never be seen by the next change). The decisions are the planner's and the
/// compiler's; this class keeps the state and runs them.
/// </summary>
public sealed class SandboxNetwork(
    LinuxNetwork shell,
    NetworkNaming naming,
    string stateDirectory,
    UplinkSettings? uplink = null,
    Func<string, CancellationToken, Task<IReadOnlyList<IPAddress>>>? resolver = null,
    TimeProvider? time = null)
{
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Func<string, CancellationToken, Task<IReadOnlyList<IPAddress>>> _resolver = resolver ?? FirewallNameResolver.SystemResolver;
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    // Running (or starting) qubes by name; a client's entry in _links is its current link.
    private readonly Dictionary<string, SandboxNetworkSpec> _qubes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LinkPlan> _links = new(StringComparer.Ordinal);
    // What each netvm must enforce, per client, whether or not the client is linked now: applied when it is.
    private readonly Dictionary<(string NetVm, string Client), ClientRules> _firewalls = [];

    private sealed record ClientRules(string ClientIp, FirewallRules Rules);

    public NetworkNaming Naming => naming;

    /// <summary>The namespace a running qube's sandbox joins.</summary>
    public string NamespaceOf(SandboxNetworkSpec qube) => naming.NamespaceOf(qube.Domain(null));

    /// <summary>The netvm a client is linked to now, or null.</summary>
    public string? LinkedNetVmOf(string client)
    {
        lock (_qubes)
            return _links.TryGetValue(client, out var link) ? link.Client.NetVm : null;
    }

    /// <summary>
    /// Before a qube's sandbox starts: its namespace (a stale one of the same id is replaced), empty. Returns it: the
    /// sandbox can start in it while <see cref="WireAsync"/> does the rest.
    /// </summary>
    public Task<string> CreateAsync(SandboxNetworkSpec qube, CancellationToken ct) => Locked(async () =>
    {
        var ns = naming.NamespaceOf(qube.Domain(null));
        await shell.DeleteNamespaceAsync(ns, ct).ConfigureAwait(false);
        // A client's lo comes up in its link's batch.
        await shell.CreateNamespaceAsync(ns, ct, loopbackLater: qube.NetVm is not null).ConfigureAwait(false);
        lock (_qubes)
            _qubes[qube.Name] = qube;
        return ns;
    }, ct);

    /// <summary>
    /// A created qube's network: a netvm's forwarding and tables (and the uplink at the edge), its link to its netvm,
    /// and its chain there when its rules are known (until then the netvm forwards nothing for it). Saved for a
    /// later qubesd. On failure the caller releases the qube.
    /// </summary>
    public Task WireAsync(SandboxNetworkSpec qube, CancellationToken ct) => Locked(async () =>
    {
        if (qube.ProvidesNetwork)
        {
            var self = qube.Domain(qube.NetVm);
            await shell.SetUpNetVmAsync(NetworkPlanner.PlanNetVm(self, naming, qube.NetVm is null ? uplink?.Dns ?? [] : []), ct).ConfigureAwait(false);
            if (qube.NetVm is null && uplink is not null)
                await shell.LinkUplinkAsync(NetworkPlanner.PlanUplink(self, naming, uplink.Namespace, uplink.UplinkAddress, uplink.NetVmAddress, uplink.PrefixLength), ct)
                    .ConfigureAwait(false);
        }
        if (qube.NetVm is { } netVm)
            await LinkLockedAsync(qube.Name, netVm, ct).ConfigureAwait(false);
        await SaveAsync(qube, ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary><see cref="CreateAsync"/> then <see cref="WireAsync"/>; on failure nothing of the qube is left.</summary>
    public async Task<string> PrepareAsync(SandboxNetworkSpec qube, CancellationToken ct)
    {
        var ns = await CreateAsync(qube, ct).ConfigureAwait(false);
        try
        {
            await WireAsync(qube, ct).ConfigureAwait(false);
            return ns;
        }
        catch
        {
            await ReleaseAsync(qube.Name, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// After a qube's sandbox is gone: its chain at its netvm and its namespace (with its veth pairs; a netvm's clients
    /// keep only <c>lo</c> until it is back and they are attached again).
    /// </summary>
    public Task ReleaseAsync(string name, CancellationToken ct) => Locked(async () =>
    {
        SandboxNetworkSpec? qube;
        LinkPlan? link;
        lock (_qubes)
        {
            _qubes.Remove(name, out qube);
            _links.Remove(name, out link);
            // The veth pairs of its clients go with its namespace.
            foreach (var client in _links.Where(l => l.Value.Client.NetVm == name).Select(l => l.Key).ToList())
                _links.Remove(client);
        }
        // Its chain goes from the netvm; the veth pair goes with its namespace (both ends), no need to delete it first.
        if (link is not null && LinuxNetwork.NamespaceExists(link.NetVmNamespace))
            await shell.NftAsync(link.NetVmNamespace, FirewallCompiler.RemoveClientChain(link), ct).ConfigureAwait(false);
        if (qube is not null)
            await shell.DeleteNamespaceAsync(NamespaceOf(qube), ct).ConfigureAwait(false);
        // A disposable's directory is gone with it by now; File.Delete throws for a missing directory.
        if (File.Exists(SpecFile(name)))
            File.Delete(SpecFile(name));
        return true;
    }, ct);

    /// <summary>Links a running client to a running netvm (a netvm change, or the netvm back after a restart).</summary>
    public Task AttachAsync(string client, string netVm, CancellationToken ct) => Locked(async () =>
    {
        await LinkLockedAsync(client, netVm, ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>Cuts a client off its netvm: chain and veth pair gone, only <c>lo</c> left.</summary>
    public Task DetachAsync(string client, CancellationToken ct) => Locked(async () =>
    {
        LinkPlan? link;
        lock (_qubes)
            _links.Remove(client, out link);
        if (link is not null)
            await shell.UnlinkAsync(link, ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>
    /// Records the rules <paramref name="netVm"/> enforces for a client and, when the client is linked there, replaces
    /// its chain (one nft transaction; DNS names resolved now, a name that does not resolve fails the chain closed).
    /// </summary>
    public Task<CompiledClientChain?> ApplyFirewallAsync(string netVm, string client, string clientIp, FirewallRules rules, CancellationToken ct) =>
        Locked(async () =>
        {
            lock (_qubes)
                _firewalls[(netVm, client)] = new ClientRules(clientIp, rules);
            return await ApplyChainLockedAsync(netVm, client, ct).ConfigureAwait(false);
        }, ct);

    /// <summary>Forgets a client's rules at a netvm; a client still linked there keeps no chain, so nothing is forwarded for it.</summary>
    public Task RemoveFirewallAsync(string netVm, string client, CancellationToken ct) => Locked(async () =>
    {
        LinkPlan? link;
        lock (_qubes)
        {
            _firewalls.Remove((netVm, client));
            link = _links.TryGetValue(client, out var l) && l.Client.NetVm == netVm ? l : null;
        }
        if (link is not null)
            await shell.NftAsync(link.NetVmNamespace, FirewallCompiler.RemoveClientChain(link), ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>
    /// After a daemon restart: the network of the sandboxes that were adopted is taken over from their saved specs
    /// (namespaces, links and chains survive qubesd in the kernel); namespaces of ours that belong to none of them
    /// are deleted. Chains are re-applied when the runtime sends the rules again.
    /// </summary>
    public Task<IReadOnlyList<string>> AdoptAsync(IReadOnlyCollection<string> running, CancellationToken ct) => Locked(async () =>
    {
        var keep = new HashSet<string>(StringComparer.Ordinal);
        var specs = new List<SandboxNetworkSpec>();
        foreach (var name in running)
        {
            var file = SpecFile(name);
            if (!File.Exists(file))
                continue;
            var spec = JsonSerializer.Deserialize<SandboxNetworkSpec>(await File.ReadAllTextAsync(file, ct).ConfigureAwait(false));
            if (spec is null)
                continue;
            specs.Add(spec);
            keep.Add(NamespaceOf(spec));
        }
        lock (_qubes)
        {
            foreach (var spec in specs)
                _qubes[spec.Name] = spec;
            foreach (var spec in specs)
                if (spec.NetVm is { } netVm && _qubes.TryGetValue(netVm, out var netVmSpec) && netVmSpec.ProvidesNetwork)
                    _links[spec.Name] = NetworkPlanner.PlanLink(spec.Domain(netVm), netVmSpec.Domain(netVmSpec.NetVm), naming);
        }
        return await shell.CleanUpStaleAsync(naming, keep, ct).ConfigureAwait(false);
    }, ct);

    private async Task LinkLockedAsync(string client, string netVm, CancellationToken ct)
    {
        LinkPlan link;
        LinkPlan? old;
        lock (_qubes)
        {
            if (!_qubes.TryGetValue(client, out var clientSpec))
                throw new NetworkPlanException($"{client} is not running");
            if (!_qubes.TryGetValue(netVm, out var netVmSpec))
                throw new NetworkPlanException($"netvm {netVm} is not running");
            link = NetworkPlanner.PlanLink(clientSpec.Domain(netVm), netVmSpec.Domain(netVmSpec.NetVm), naming);
            _links.TryGetValue(client, out old);
        }
        if (old is not null)
            await shell.UnlinkAsync(old, ct).ConfigureAwait(false);
        lock (_qubes)
        {
            _links[client] = link;
            if (_qubes.TryGetValue(client, out var spec))
                _qubes[client] = spec with { NetVm = netVm };
        }
        // The chain names the vif and the address, not a live interface: it is loaded while the link is made. Nothing
        // passes before both are done (no map entry, no route), and a failure of either fails the attach.
        await Task.WhenAll(shell.LinkAsync(link, ct), ApplyChainLockedAsync(netVm, client, ct)).ConfigureAwait(false);
    }

    private async Task<CompiledClientChain?> ApplyChainLockedAsync(string netVm, string client, CancellationToken ct)
    {
        LinkPlan? link;
        ClientRules? rules;
        lock (_qubes)
        {
            link = _links.TryGetValue(client, out var l) && l.Client.NetVm == netVm ? l : null;
            _firewalls.TryGetValue((netVm, client), out rules);
        }
        if (link is null || rules is null)
            return null;
        var now = _time.GetUtcNow();
        var names = FirewallCompiler.NamesToResolve(rules.Rules, now);
        var resolved = names.Count == 0
            ? new Dictionary<string, IReadOnlyList<IPAddress>>()
            : await FirewallNameResolver.ResolveAsync(names, _resolver, ResolveTimeout, ct).ConfigureAwait(false);
        var chain = FirewallCompiler.CompileClientChain(link, rules.Rules, now, resolved);
        await shell.ApplyClientChainAsync(link, chain, ct).ConfigureAwait(false);
        return chain;
    }

    private string SpecFile(string name) => Path.Combine(stateDirectory, "qubes", name, "network.json");

    private async Task SaveAsync(SandboxNetworkSpec qube, CancellationToken ct)
    {
        var file = SpecFile(qube.Name);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(qube), ct).ConfigureAwait(false);
    }

    private async Task<T> Locked<T>(Func<Task<T>> action, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task Locked(Func<Task<bool>> action, CancellationToken ct) => await Locked<bool>(action, ct).ConfigureAwait(false);
}
