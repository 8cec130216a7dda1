using System.Diagnostics;
using System.Net;
using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;
using Xunit;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// Real TCP through app → sys-firewall → sys-net → uplink, in namespaces each test creates and deletes.
/// Needs root, ip, nft and busybox: fails, never skips, without them.
/// </summary>
[Collection(RealNetworkCollection.Name)]
public sealed class NetworkTrafficTests(RealNetworkFixture fixture)
{
    private TestNetwork Net => fixture.Network;

    private static readonly NetworkDomain Work = new("work", 7, netVm: "sys-firewall");
    private static readonly NetworkDomain Personal = new("personal", 8, netVm: "sys-firewall");

    private static async Task ExpectAsync(TestNetwork net, params (NetworkDomain From, IPAddress To, int Port, bool Allowed)[] checks)
    {
        // In parallel: each blocked attempt costs the 1 s connect timeout.
        var results = await Task.WhenAll(checks.Select(c => net.ConnectAsync(c.From, c.To, c.Port)));
        var wrong = checks.Zip(results, (First, Second) => (First, Second))
            .Where(p => p.First.Allowed != p.Second.Connected)
            .Select(p => $"{p.First.From.Name} -> {p.First.To}:{p.First.Port} expected {(p.First.Allowed ? "connect" : "blocked")}, got {p.Second.Output}")
            .ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task Rules_allow_and_block_real_connections()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, "action=accept dst4=192.168.201.10 proto=tcp dstports=80\n");
        await ExpectAsync(net,
            (Work, Internet10, 80, true),
            (Work, Internet10, 8080, false),
            (Work, Internet20, 80, false));
    }

    [Fact]
    public async Task A_qube_without_rules_may_reach_everything()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, rules: null);
        await ExpectAsync(net, (Work, Internet10, 80, true), (Work, Internet20, 8080, true), (Work, Internet20, 3000, true));
    }

    [Fact]
    public async Task Drop_rules_before_accept_all_block_only_what_they_name()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, "action=drop dst4=192.168.201.20\naction=accept\n");
        await ExpectAsync(net, (Work, Internet10, 8080, true), (Work, Internet20, 80, false));
    }

    [Fact]
    public async Task Port_range_rule_allows_inside_and_blocks_outside()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, "action=accept proto=tcp dstports=1000-2000\n");
        await ExpectAsync(net, (Work, Internet10, 1500, true), (Work, Internet20, 1500, true), (Work, Internet10, 3000, false), (Work, Internet10, 80, false));
    }

    [Fact]
    public async Task Icmp_type_rule_lets_pings_through_only_for_the_qube_that_has_it()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, "action=accept proto=icmp icmptype=8\n");
        await net.AddQubeAsync(Personal, "action=drop proto=icmp\naction=accept\n");
        var pings = await Task.WhenAll(new[] { Work, Personal }.Select(q =>
            RunAsync("ip", "netns", "exec", net.Naming.NamespaceOf(q), "busybox", "ping", "-c", "1", "-W", "1", $"{Internet10}")));
        Assert.True(pings[0].Exit == 0, $"work's ping must pass: {pings[0].Stdout} {pings[0].Stderr}");
        Assert.True(pings[1].Exit != 0, $"personal's ping must be dropped: {pings[1].Stdout}");
        await ExpectAsync(net, (Work, Internet10, 80, false), (Personal, Internet10, 80, true));
    }

    [Fact]
    public async Task Dns_special_target_reaches_the_resolver_through_the_virtual_address_only()
    {
        var net = Net;
        await using var scope = net.Scope();
        // sys-net redirects 10.139.1.1/.2 to 192.168.201.10 (the test's resolver, TCP 53 here).
        await net.AddQubeAsync(Work, "action=accept specialtarget=dns\n");
        await net.AddQubeAsync(Personal, "action=accept proto=tcp dstports=80\n");
        // A client of sys-net itself: there the destination is already redirected when the firewall sees it.
        var onEdge = new NetworkDomain("on-edge", 10, netVm: "sys-net");
        await net.AddQubeAsync(onEdge, "action=accept specialtarget=dns\n");
        await ExpectAsync(net,
            (onEdge, VirtualDns.Primary, 53, true),
            (onEdge, Internet10, 53, false),
            (Work, VirtualDns.Primary, 53, true),
            (Work, VirtualDns.Secondary, 53, true),
            (Work, Internet10, 53, false), // the same server and port, but not as the qube's DNS
            (Work, Internet10, 80, false),
            (Personal, VirtualDns.Primary, 53, false)); // its rules do not allow DNS
    }

    [Fact]
    public async Task Reapplying_one_clients_chain_changes_only_that_client()
    {
        var net = Net;
        await using var scope = net.Scope();
        var work = (await net.AddQubeAsync(Work, "action=accept dst4=192.168.201.10\n"))!;
        var personal = (await net.AddQubeAsync(Personal, "action=accept dst4=192.168.201.20\n"))!;
        await ExpectAsync(net, (Work, Internet10, 80, true), (Work, Internet20, 80, false), (Personal, Internet20, 80, true), (Personal, Internet10, 80, false));

        var personalChainBefore = await ListChainAsync(net, personal);
        await net.ApplyRulesAsync(work, "action=accept dst4=192.168.201.20\n");

        Assert.Equal(personalChainBefore, await ListChainAsync(net, personal));
        await ExpectAsync(net, (Work, Internet20, 80, true), (Work, Internet10, 80, false), (Personal, Internet20, 80, true), (Personal, Internet10, 80, false));
    }

    [Fact]
    public async Task A_qube_without_netvm_has_only_lo_and_no_route()
    {
        var net = Net;
        await using var scope = net.Scope();
        var vault = new NetworkDomain("vault", 9);
        Assert.Null(await net.AddQubeAsync(vault));
        var ns = net.Naming.NamespaceOf(vault);
        var links = (await RunOkAsync("ip", "-n", ns, "-o", "link", "show")).Trim().Split('\n');
        Assert.Single(links);
        Assert.Contains(": lo:", links[0], StringComparison.Ordinal);
        Assert.Equal("", (await RunOkAsync("ip", "-n", ns, "-4", "route", "show")).Trim());
        var attempt = await net.ConnectAsync(vault, Internet10, 80);
        Assert.False(attempt.Connected);
        Assert.Contains("unreachable", attempt.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Moving_a_client_to_another_netvm_moves_its_link_and_its_rules()
    {
        var net = Net;
        await using var scope = net.Scope();
        var otherFirewall = new NetworkDomain("sys-firewall2", 4, netVm: "sys-net", providesNetwork: true);
        await net.AddProxyNetVmAsync(otherFirewall);
        const string rules = "action=accept dst4=192.168.201.10 proto=tcp dstports=80\n";
        var oldLink = (await net.AddQubeAsync(Work, rules))!;
        await ExpectAsync(net, (Work, Internet10, 80, true), (Work, Internet20, 80, false));

        await net.Shell.UnlinkAsync(oldLink);
        await ExpectAsync(net, (Work, Internet10, 80, false));
        var moved = new NetworkDomain(Work.Name, Work.Qid, netVm: otherFirewall.Name);
        net.Register(moved);
        var newLink = net.PlanLink(moved);
        await net.Shell.LinkAsync(newLink);
        await net.ApplyRulesAsync(newLink, rules);

        Assert.Equal(IPAddress.Parse("10.137.0.4"), newLink.Gateway);
        Assert.DoesNotContain("qbs-q7", await net.Shell.ListRulesetAsync(oldLink.NetVmNamespace), StringComparison.Ordinal);
        Assert.DoesNotContain("vifq7", await RunOkAsync("ip", "-n", oldLink.NetVmNamespace, "-o", "link", "show"), StringComparison.Ordinal);
        Assert.Contains("qbs-q7", await net.Shell.ListRulesetAsync(newLink.NetVmNamespace), StringComparison.Ordinal);
        Assert.Contains("default via 10.137.0.4", await RunOkAsync("ip", "-n", newLink.ClientNamespace, "route", "show"), StringComparison.Ordinal);
        await ExpectAsync(net, (Work, Internet10, 80, true), (Work, Internet20, 80, false));
    }

    [Fact]
    public async Task When_a_netvm_restarts_its_clients_lose_the_link_and_relinking_restores_them()
    {
        var net = Net;
        await using var scope = net.Scope();
        var otherFirewall = new NetworkDomain("sys-firewall2", 4, netVm: "sys-net", providesNetwork: true);
        await net.AddProxyNetVmAsync(otherFirewall);
        var client = new NetworkDomain("work", 7, netVm: otherFirewall.Name);
        const string rules = "action=accept dst4=192.168.201.20\n";
        var link = (await net.AddQubeAsync(client, rules))!;
        await ExpectAsync(net, (client, Internet20, 80, true), (client, Internet10, 80, false));

        // The netvm's namespace goes away (it stopped): the veth pair goes with it, the client keeps only lo.
        await net.Shell.DeleteNamespaceAsync(link.NetVmNamespace);
        var links = await RunOkAsync("ip", "-n", link.ClientNamespace, "-o", "link", "show");
        Assert.DoesNotContain(" eth0@", links, StringComparison.Ordinal);
        Assert.Equal("", (await RunOkAsync("ip", "-n", link.ClientNamespace, "-4", "route", "show")).Trim());

        // Back up, with its sys-net link replaced (the old chain in sys-net is reused by the same key).
        await net.Shell.UnlinkAsync(net.PlanLink(otherFirewall));
        await net.AddProxyNetVmAsync(otherFirewall);
        await net.Shell.LinkAsync(link);
        await net.ApplyRulesAsync(link, rules);
        await ExpectAsync(net, (client, Internet20, 80, true), (client, Internet10, 80, false));
    }

    [Fact]
    public async Task Clients_of_one_netvm_cannot_reach_each_other_and_spoofed_sources_are_dropped()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, rules: null);
        await net.AddQubeAsync(Personal, rules: null);
        var personalNs = net.Naming.NamespaceOf(Personal);
        var server = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", personalNs, "busybox", "nc", "-ll", "-p", "80", "-e", "/bin/echo", "ok"]) { RedirectStandardInput = true })!;
        try
        {
            await WaitUntilAsync(async () => (await ConnectAsync(personalNs, Personal.Ip, 80)).Connected, "the server in personal");
            await ExpectAsync(net, (Work, Personal.Ip, 80, false), (Work, Internet10, 80, true));
            // A source address other than its own: no map entry matches, the forward policy drops it.
            var workNs = net.Naming.NamespaceOf(Work);
            await RunOkAsync("ip", "-n", workNs, "addr", "add", "10.137.0.99/32", "dev", "eth0");
            var (exit, _, _) = await RunAsync("ip", "netns", "exec", workNs, "busybox", "nc", "-w", "1", "-s", "10.137.0.99", $"{Internet10}", "80");
            Assert.NotEqual(0, exit);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Stale_namespaces_with_the_prefix_are_cleaned_and_others_kept()
    {
        var net = Net;
        await using var scope = net.Scope();
        await net.AddQubeAsync(Work, rules: null);
        var stale = net.Naming.Prefix + "q77";
        await net.Shell.CreateNamespaceAsync(stale);
        var keep = net.FixedNamespaces;
        Assert.Contains(net.UplinkNamespace, keep);
        var removed = await net.Shell.CleanUpStaleAsync(net.Naming, keep);
        Assert.Equal([net.Naming.NamespaceOf(Work), stale], removed);
        var left = await net.Shell.ListNamespacesAsync();
        Assert.All(keep, ns => Assert.Contains(ns, left));
        Assert.DoesNotContain(net.Naming.NamespaceOf(Work), left);
    }

    [Fact]
    public async Task Every_rule_form_the_compiler_writes_is_accepted_by_nft()
    {
        var net = Net;
        // A client that is never started: only its chain and map entry go into sys-firewall, and are removed again.
        var link = net.PlanLink(new NetworkDomain("forms", 60, netVm: "sys-firewall"));
        var rules = FirewallRuleSet.ParseRules(string.Join('\n',
            "action=accept dst4=192.168.201.10",
            "action=drop dst4=10.1.2.3/16",
            "action=accept dsthost=0.0.0.0/0 proto=udp dstports=123",
            "action=accept dsthost=example.org proto=tcp dstports=443",
            "action=accept dsthost=one.example",
            "action=accept proto=tcp dstports=1000-2000",
            "action=drop proto=icmp",
            "action=accept proto=icmp icmptype=0",
            "action=accept specialtarget=dns",
            "action=accept proto=udp specialtarget=dns",
            "action=drop proto=tcp specialtarget=dns dstports=53",
            "action=accept dst6=2001:db8::/32",
            "action=accept comment=all the rest") + "\n");
        var names = new Dictionary<string, IReadOnlyList<IPAddress>>
        {
            ["example.org"] = [IPAddress.Parse("192.0.2.1"), IPAddress.Parse("192.0.2.2")],
            ["one.example"] = [IPAddress.Parse("192.0.2.3")],
        };
        var chain = FirewallCompiler.CompileClientChain(link, rules, DateTimeOffset.UtcNow, names);
        Assert.False(chain.FailedClosed);
        try
        {
            await net.Shell.ApplyClientChainAsync(link, chain);
            var listed = await ListChainAsync(net, link);
            // 12 compiled rules (the IPv6 one is left out) and the fixed drop.
            Assert.Equal(13, listed.Split('\n').Count(l => l.TrimEnd().EndsWith("accept", StringComparison.Ordinal) || l.TrimEnd().EndsWith("drop", StringComparison.Ordinal)));
        }
        finally
        {
            await net.Shell.UnlinkAsync(link);
        }
        Assert.DoesNotContain(link.ChainName, await net.Shell.ListRulesetAsync(link.NetVmNamespace), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shell_errors_carry_the_command_and_stderr()
    {
        RequireRootAndTools();
        var shell = new LinuxNetwork();
        var missing = await Assert.ThrowsAsync<NetworkCommandException>(() => shell.NftAsync("qt-no-such-namespace-x", "add table inet t\n"));
        Assert.Contains("nft -f - ` in network namespace qt-no-such-namespace-x".Replace(" `", "`"), missing.Message, StringComparison.Ordinal);
        var ns = "qt-err-" + Guid.NewGuid().ToString("N")[..6];
        await shell.CreateNamespaceAsync(ns);
        try
        {
            var error = await Assert.ThrowsAsync<NetworkCommandException>(() => shell.NftAsync(ns, "add tabel inet t\n"));
            Assert.Contains("nft -f -", error.Message, StringComparison.Ordinal);
            Assert.Contains("add tabel inet t", error.Message, StringComparison.Ordinal); // the script is in the message
            Assert.False(string.IsNullOrWhiteSpace(error.StandardError));
        }
        finally
        {
            await shell.DeleteNamespaceAsync(ns);
        }
    }

    private static Task<string> ListChainAsync(TestNetwork net, LinkPlan link) =>
        RunOkAsync("ip", "netns", "exec", link.NetVmNamespace, "nft", "list", "chain", "inet", "qubes-firewall", link.ChainName);
}
