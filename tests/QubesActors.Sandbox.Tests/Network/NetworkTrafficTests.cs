using System.Diagnostics;
using System.Net;
using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// Real TCP through app → sys-firewall → sys-net → uplink, in namespaces each test creates and deletes.
/// Needs root, ip, nft and busybox: fails, never skips, without them.
/// </summary>
public sealed class NetworkTrafficTests(ITestOutputHelper output)
{
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
        await using var net = await StartAsync();
        await net.AddQubeAsync(Work, "action=accept dst4=192.168.201.10 proto=tcp dstports=80\n");
        await ExpectAsync(net,
            (Work, Internet10, 80, true),
            (Work, Internet10, 8080, false),
            (Work, Internet20, 80, false));
    }

    [Fact]
    public async Task A_qube_without_rules_may_reach_everything()
    {
        await using var net = await StartAsync();
        await net.AddQubeAsync(Work, rules: null);
        await ExpectAsync(net, (Work, Internet10, 80, true), (Work, Internet20, 8080, true), (Work, Internet20, 3000, true));
    }

    [Fact]
    public async Task Drop_rules_before_accept_all_block_only_what_they_name()
    {
        await using var net = await StartAsync();
        await net.AddQubeAsync(Work, "action=drop dst4=192.168.201.20\naction=accept\n");
        await ExpectAsync(net, (Work, Internet10, 8080, true), (Work, Internet20, 80, false));
    }

    [Fact]
    public async Task Port_range_rule_allows_inside_and_blocks_outside()
    {
        await using var net = await StartAsync();
        await net.AddQubeAsync(Work, "action=accept proto=tcp dstports=1000-2000\n");
        await ExpectAsync(net, (Work, Internet10, 1500, true), (Work, Internet20, 1500, true), (Work, Internet10, 3000, false), (Work, Internet10, 80, false));
    }

    [Fact]
    public async Task Dns_special_target_reaches_the_resolver_through_the_virtual_address_only()
    {
        await using var net = await StartAsync();
        // sys-net redirects 10.139.1.1/.2 to 192.168.201.10 (the test's resolver, TCP 53 here).
        await net.AddQubeAsync(Work, "action=accept specialtarget=dns\n");
        await net.AddQubeAsync(Personal, "action=accept proto=tcp dstports=80\n");
        await ExpectAsync(net,
            (Work, VirtualDns.Primary, 53, true),
            (Work, VirtualDns.Secondary, 53, true),
            (Work, Internet10, 53, false), // the same server and port, but not as the qube's DNS
            (Work, Internet10, 80, false),
            (Personal, VirtualDns.Primary, 53, false)); // its rules do not allow DNS
    }

    [Fact]
    public async Task Reapplying_one_clients_chain_changes_only_that_client()
    {
        await using var net = await StartAsync();
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
        await using var net = await StartAsync();
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
        await using var net = await StartAsync();
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
    public async Task Clients_of_one_netvm_cannot_reach_each_other_and_spoofed_sources_are_dropped()
    {
        await using var net = await StartAsync();
        await net.AddQubeAsync(Work, rules: null);
        await net.AddQubeAsync(Personal, rules: null);
        var personalNs = net.Naming.NamespaceOf(Personal);
        var server = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", personalNs, "busybox", "nc", "-ll", "-p", "80", "-e", "/bin/echo", "ok"]) { RedirectStandardInput = true })!;
        try
        {
            Assert.True((await ConnectAsync(personalNs, Personal.Ip, 80)).Connected, "the server in personal must answer locally");
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
        await using var net = await StartAsync();
        await net.AddQubeAsync(Work, rules: null);
        var keep = new HashSet<string>([net.UplinkNamespace, net.Naming.NamespaceOf(SysNet), net.Naming.NamespaceOf(SysFirewall)]);
        var removed = await net.Shell.CleanUpStaleAsync(net.Naming, keep);
        Assert.Equal([net.Naming.NamespaceOf(Work)], removed);
        var left = await net.Shell.ListNamespacesAsync();
        Assert.All(keep, ns => Assert.Contains(ns, left));
        Assert.DoesNotContain(net.Naming.NamespaceOf(Work), left);
    }

    [Fact]
    public async Task Shell_errors_carry_the_command_and_stderr()
    {
        RequireRootAndTools();
        var error = await Assert.ThrowsAsync<NetworkCommandException>(() => new LinuxNetwork().NftAsync("qt-no-such-namespace-x", "add table inet t\n"));
        Assert.Contains("netns exec qt-no-such-namespace-x", error.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(error.StandardError));
    }

    [Fact]
    public async Task Benchmark_attach_one_domain_and_apply_one_chain_with_1000_clients_loaded()
    {
        await using var net = await StartAsync();
        var firewallNs = net.Naming.NamespaceOf(SysFirewall);

        // Attach = namespace + veth/addresses/routes + its chain; 20 qubes.
        var attach = new List<double>();
        for (var qid = 100; qid < 120; qid++)
        {
            var qube = new NetworkDomain($"bench{qid}", qid, netVm: "sys-firewall");
            var watch = Stopwatch.StartNew();
            await net.AddQubeAsync(qube, "action=accept proto=tcp dstports=80\n");
            attach.Add(watch.Elapsed.TotalMilliseconds);
        }

        // 1,000 clients' chains (5 rules each) loaded in one transaction; their vifs need not exist for the map.
        var rules = FirewallRuleSet.ParseRules("action=accept dst4=192.168.201.10 proto=tcp dstports=80\naction=accept specialtarget=dns\naction=drop proto=icmp\naction=accept proto=tcp dstports=1000-2000\naction=drop dst4=10.0.0.0/8\n");
        var links = Enumerable.Range(1000, 1000).Select(qid => NetworkPlanner.PlanLink(new NetworkDomain($"c{qid}", qid, netVm: "sys-firewall"), SysFirewall, net.Naming)).ToList();
        var load = Stopwatch.StartNew();
        await net.Shell.NftAsync(firewallNs, string.Concat(links.Select(l => FirewallCompiler.CompileClientChain(l, rules, net.Now, NoNames).Script)));
        var loadMs = load.Elapsed.TotalMilliseconds;

        var apply = new List<double>();
        var target = links[500];
        for (var i = 0; i < 20; i++)
        {
            var changed = FirewallRuleSet.ParseRules($"action=accept proto=tcp dstports={2000 + i}\n");
            var watch = Stopwatch.StartNew();
            await net.Shell.ApplyClientChainAsync(target, FirewallCompiler.CompileClientChain(target, changed, net.Now, NoNames));
            apply.Add(watch.Elapsed.TotalMilliseconds);
        }
        var chain = await RunOkAsync("ip", "netns", "exec", firewallNs, "nft", "list", "chain", "inet", "qubes-firewall", target.ChainName);
        Assert.Contains("tcp dport 2019 accept", chain, StringComparison.Ordinal);

        output.WriteLine($"attach one domain (netns + veth + addr/routes + chain), n=20: p50 {P(attach, 0.5):F1} ms, max {attach.Max():F1} ms");
        output.WriteLine($"load 1,000 client chains (5 rules each) in one nft transaction: {loadMs:F0} ms");
        output.WriteLine($"apply one chain with 1,000 loaded, n=20: p50 {P(apply, 0.5):F1} ms, max {apply.Max():F1} ms");
        // Generous bounds (the issue's target is 30 ms for a chain): catches a regression to whole-table replacement
        // (~300 ms at 1,000 clients) without failing on a busy 2-core machine.
        Assert.True(P(apply, 0.5) < 100, $"one chain took p50 {P(apply, 0.5):F1} ms");
        Assert.True(P(attach, 0.5) < 150, $"attach took p50 {P(attach, 0.5):F1} ms");
    }

    private static double P(List<double> values, double q) => values.Order().ElementAt((int)Math.Min(values.Count - 1, Math.Floor(q * values.Count)));

    private static Task<string> ListChainAsync(TestNetwork net, LinkPlan link) =>
        RunOkAsync("ip", "netns", "exec", link.NetVmNamespace, "nft", "list", "chain", "inet", "qubes-firewall", link.ChainName);
}
