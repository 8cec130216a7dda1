using System.Collections.Immutable;
using System.Net;
using QubesActors.Core.Model;
using QubesActors.Runtime.Backend;
using QubesActors.Sandbox.Network;
using QubesActors.Sandbox.Tests.Sandboxes;
using Xunit;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>The uplink shared by the backend's network tests; sys-net and the rest are sandboxes each test starts.</summary>
public sealed class UplinkFixture : IAsyncLifetime
{
    private TestNetwork? _network;

    internal TestNetwork Network => _network ?? throw new InvalidOperationException("the uplink was not built");

    public async Task InitializeAsync() => _network = await TestNetwork.StartUplinkOnlyAsync();

    public async Task DisposeAsync()
    {
        if (_network is not null)
            await _network.DisposeAsync();
    }
}

/// <summary>
/// The sandbox backend as qubesd drives it, with real sandboxes as sys-net, sys-firewall and app qubes and real TCP
/// from inside the app qube's sandbox to the tests' uplink: the calls the qube actors make (start with a netvm,
/// firewall per client, netvm change, netvm restart and re-attach, adoption by a new qubesd).
/// </summary>
[Collection(RealNetworkCollection.Name)]
public sealed class SandboxBackendNetworkTests : IClassFixture<UplinkFixture>, IAsyncLifetime
{
    private readonly TestNetwork _uplink;
    private TestStorage _t = null!;
    private NetworkNaming _naming = null!;
    private SandboxBackend _backend = null!;

    public SandboxBackendNetworkTests(UplinkFixture fixture) => _uplink = fixture.Network;

    public Task InitializeAsync()
    {
        _t = new TestStorage();
        _naming = new NetworkNaming(_t.Prefix + "-");
        _backend = NewBackend(_t.Manager);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _backend.Dispose();
        await _t.DisposeAsync();
        await new LinuxNetwork().CleanUpStaleAsync(_naming, new HashSet<string>());
    }

    private SandboxBackend NewBackend(SandboxManager manager) =>
        new(manager, new SandboxNetwork(new LinuxNetwork(), _naming, _t.Storage,
            new UplinkSettings(_uplink.UplinkNamespace, IPAddress.Parse("192.168.200.1"), IPAddress.Parse("192.168.200.2"), 24, [Internet10]),
            resolver: (name, _) => Task.FromResult<IReadOnlyList<IPAddress>>(name == "updates.example" ? [Internet20] : [])));

    private DomainSpec Qube(string name, int qid, string? netvm, bool providesNetwork = false) =>
        new(Guid.NewGuid(), _t.Name(name), QubeClass.AppVM, qid, TestStorage.Template, netvm is null ? null : _t.Name(netvm),
            Addressing.VmIdToIpv4("10.137", qid), 128, 256, 1, providesNetwork);

    private async Task<(DomainSpec Net, DomainSpec Firewall)> StartNetVmsAsync()
    {
        var net = Qube("sys-net", 2, null, providesNetwork: true);
        var firewall = Qube("sys-firewall", 3, "sys-net", providesNetwork: true);
        await _backend.StartAsync(net, CancellationToken.None);
        await _backend.StartAsync(firewall, CancellationToken.None);
        // As the actors do once a netvm runs: its clients' rules (sys-firewall has none: accept all).
        await _backend.ApplyFirewallAsync(net.Name, Rules(firewall, "action=accept"), CancellationToken.None);
        return (net, firewall);
    }

    private static ClientFirewall Rules(DomainSpec client, params string[] rules) => new(client.Name, client.Ip, [.. rules]);

    /// <summary>A TCP connection from inside the qube's sandbox (its init's network namespace).</summary>
    private async Task<bool> ConnectsAsync(DomainSpec from, IPAddress to, int port)
    {
        var pid = _backend.Manager.InitPidOf(from.Name);
        var (exit, stdout, _) = await RunAsync("nsenter", "-t", $"{pid}", "-n", "--", "busybox", "nc", "-w", "1", $"{to}", $"{port}");
        return exit == 0 && stdout.Trim() == "ok";
    }

    private async Task ExpectAsync(params (DomainSpec From, IPAddress To, int Port, bool Allowed)[] checks)
    {
        var results = await Task.WhenAll(checks.Select(c => ConnectsAsync(c.From, c.To, c.Port)));
        var wrong = checks.Zip(results, (First, Second) => (First, Second)).Where(p => p.First.Allowed != p.Second)
            .Select(p => $"{p.First.From.Name} -> {p.First.To}:{p.First.Port} expected {(p.First.Allowed ? "connect" : "blocked")}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task An_app_qube_reaches_the_uplink_through_sys_firewall_and_sys_net_as_its_rules_allow()
    {
        var (_, firewall) = await StartNetVmsAsync();
        var work = Qube("work", 7, "sys-firewall");
        await _backend.StartAsync(work, CancellationToken.None);
        // Linked but no rules yet: the netvm forwards nothing for it (fail closed).
        Assert.False(await ConnectsAsync(work, Internet10, 80));
        await _backend.ApplyFirewallAsync(firewall.Name, Rules(work, "action=accept dst4=192.168.201.10 proto=tcp dstports=80", "action=accept specialtarget=dns"),
            CancellationToken.None);
        await ExpectAsync((work, Internet10, 80, true), (work, Internet10, 8080, false), (work, Internet20, 80, false),
            // The virtual DNS address, redirected by sys-net to the uplink's resolver (192.168.201.10:53 answers).
            (work, IPAddress.Parse("10.139.1.1"), 53, true));
        // A change replaces the chain: what was allowed is blocked now, a name in the rules resolved when applied.
        await _backend.ApplyFirewallAsync(firewall.Name, Rules(work, "action=accept dsthost=updates.example proto=tcp"), CancellationToken.None);
        await ExpectAsync((work, Internet10, 80, false), (work, Internet20, 8080, true), (work, IPAddress.Parse("10.139.1.1"), 53, false));
    }

    [Fact]
    public async Task A_qube_restarted_before_the_kernel_destroyed_its_old_veth_gets_a_new_link()
    {
        var (_, firewall) = await StartNetVmsAsync();
        // What a namespace deleted a moment ago can leave for a while (veth pairs are destroyed asynchronously).
        var firewallNs = _backend.Network.NamespaceOf(new SandboxNetworkSpec(firewall.Name, 3, null, null, true));
        await RunOkAsync("ip", "-n", firewallNs, "link", "add", "vifq7", "type", "veth", "peer", "name", "stale7");
        var work = Qube("work", 7, "sys-firewall");
        await _backend.StartAsync(work, CancellationToken.None);
        await _backend.ApplyFirewallAsync(firewall.Name, Rules(work, "action=accept"), CancellationToken.None);
        Assert.True(await ConnectsAsync(work, Internet10, 80));
        Assert.DoesNotContain("stale7", await RunOkAsync("ip", "-n", firewallNs, "-o", "link"));
    }

    [Fact]
    public async Task A_qube_without_a_netvm_has_only_loopback()
    {
        await StartNetVmsAsync();
        var vault = Qube("vault", 9, null);
        await _backend.StartAsync(vault, CancellationToken.None);
        var pid = _backend.Manager.InitPidOf(vault.Name);
        var links = await RunOkAsync("nsenter", "-t", $"{pid}", "-n", "--", "ip", "-o", "link", "show");
        Assert.Equal(["lo"], links.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim()));
        Assert.False(await ConnectsAsync(vault, Internet10, 80));
    }

    [Fact]
    public async Task A_live_netvm_change_moves_the_link_and_the_rules()
    {
        var (net, firewall) = await StartNetVmsAsync();
        var work = Qube("work", 7, "sys-firewall");
        await _backend.StartAsync(work, CancellationToken.None);
        await _backend.ApplyFirewallAsync(firewall.Name, Rules(work, "action=accept dst4=192.168.201.10"), CancellationToken.None);
        await ExpectAsync((work, Internet10, 80, true), (work, Internet20, 80, false));

        // What the actors do when `netvm` changes on a running qube: detach, forget the rules there, attach, enforce there.
        await _backend.DetachNetworkAsync(work.Name, CancellationToken.None);
        await _backend.RemoveFirewallAsync(firewall.Name, work.Name, CancellationToken.None);
        Assert.False(await ConnectsAsync(work, Internet10, 80));
        await _backend.AttachNetworkAsync(work.Name, net.Name, CancellationToken.None);
        await _backend.ApplyFirewallAsync(net.Name, Rules(work, "action=accept dst4=192.168.201.20"), CancellationToken.None);
        await ExpectAsync((work, Internet10, 80, false), (work, Internet20, 80, true));
        Assert.Equal(net.Name, _backend.Network.LinkedNetVmOf(work.Name));
        Assert.DoesNotContain("qbs-q7", await new LinuxNetwork().ListRulesetAsync(_backend.Network.NamespaceOf(new SandboxNetworkSpec(firewall.Name, 3, null, null, true))));
    }

    [Fact]
    public async Task When_the_netvm_restarts_its_clients_are_attached_again()
    {
        var (net, firewall) = await StartNetVmsAsync();
        var work = Qube("work", 7, "sys-firewall");
        await _backend.StartAsync(work, CancellationToken.None);
        var rules = Rules(work, "action=accept");
        await _backend.ApplyFirewallAsync(firewall.Name, rules, CancellationToken.None);
        Assert.True(await ConnectsAsync(work, Internet10, 80));

        await _backend.KillAsync(firewall.Name, CancellationToken.None);
        Assert.False(await ConnectsAsync(work, Internet10, 80));
        Assert.Null(_backend.Network.LinkedNetVmOf(work.Name));

        // The actors: the netvm started, its clients' rules sent again, each running client attached.
        await _backend.StartAsync(firewall, CancellationToken.None);
        await _backend.ApplyFirewallAsync(net.Name, Rules(firewall, "action=accept"), CancellationToken.None);
        await _backend.ApplyFirewallAsync(firewall.Name, rules, CancellationToken.None);
        await _backend.AttachNetworkAsync(work.Name, firewall.Name, CancellationToken.None);
        Assert.True(await ConnectsAsync(work, Internet10, 80));
    }

    [Fact]
    public async Task A_new_backend_adopts_running_sandboxes_with_their_links_and_updates_their_chains()
    {
        var (_, firewall) = await StartNetVmsAsync();
        var work = Qube("work", 7, "sys-firewall");
        await _backend.StartAsync(work, CancellationToken.None);
        await _backend.ApplyFirewallAsync(firewall.Name, Rules(work, "action=accept dst4=192.168.201.10"), CancellationToken.None);
        _t.Manager.LetGo();
        _backend.Dispose();

        // qubesd restarted: a new manager and network on the same storage, nothing restarted.
        var manager = new SandboxManager(_t.Storage, _t.Cgroups);
        _backend = NewBackend(manager);
        try
        {
            var adopted = await _backend.AdoptAsync(CancellationToken.None);
            Assert.Equal(new[] { "sys-net", "sys-firewall", "work" }.Select(_t.Name).Order(), adopted.Order());
            Assert.True(await ConnectsAsync(work, Internet10, 80)); // the kernel kept links and chains
            Assert.Equal(firewall.Name, _backend.Network.LinkedNetVmOf(work.Name));
            await _backend.ApplyFirewallAsync(firewall.Name, Rules(work, "action=accept dst4=192.168.201.20"), CancellationToken.None);
            await ExpectAsync((work, Internet10, 80, false), (work, Internet20, 80, true));
        }
        finally
        {
            // The fixture's manager let them go: this one ends them, whatever the test found.
            foreach (var name in manager.RunningNames)
                await _backend.KillAsync(name, CancellationToken.None);
        }
        Assert.DoesNotContain(await new LinuxNetwork().ListNamespacesAsync(), _naming.Owns);
    }
}
