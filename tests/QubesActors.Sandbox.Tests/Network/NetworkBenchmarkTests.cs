using System.Diagnostics;
using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>Timings of the shell on this machine (docs/sandbox-network.md); its own topology, in the same collection so nothing runs beside it.</summary>
[Collection(RealNetworkCollection.Name)]
public sealed class NetworkBenchmarkTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Benchmark_attach_one_domain_and_apply_one_chain_with_1000_clients_loaded()
    {
        await using var net = await StartAsync();
        var firewallNs = net.Naming.NamespaceOf(SysFirewall);

        // Attach = namespace + veth/addresses/routes + its chain; 10 qubes.
        var attach = new List<double>();
        for (var qid = 100; qid < 110; qid++)
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
        var floor = new List<double>();
        var target = links[500];
        for (var i = 0; i < 20; i++)
        {
            // The floor, interleaved so both see the same load: an empty script through the same two processes.
            var empty = Stopwatch.StartNew();
            await net.Shell.NftAsync(firewallNs, "");
            floor.Add(empty.Elapsed.TotalMilliseconds);
            var changed = FirewallRuleSet.ParseRules($"action=accept proto=tcp dstports={2000 + i}\n");
            var watch = Stopwatch.StartNew();
            await net.Shell.ApplyClientChainAsync(target, FirewallCompiler.CompileClientChain(target, changed, net.Now, NoNames));
            apply.Add(watch.Elapsed.TotalMilliseconds);
        }
        var chain = await RunOkAsync("ip", "netns", "exec", firewallNs, "nft", "list", "chain", "inet", "qubes-firewall", target.ChainName);
        Assert.Contains("tcp dport 2019 accept", chain, StringComparison.Ordinal);

        output.WriteLine($"attach one domain (netns + veth + addr/routes + chain), n=10: p50 {P(attach, 0.5):F1} ms, max {attach.Max():F1} ms");
        output.WriteLine($"load 1,000 client chains (5 rules each) in one nft transaction: {loadMs:F0} ms");
        output.WriteLine($"apply one chain with 1,000 loaded, n=20: p50 {P(apply, 0.5):F1} ms, max {apply.Max():F1} ms");
        output.WriteLine($"floor (`ip netns exec NS nft -f -`, empty script), n=20: p50 {P(floor, 0.5):F1} ms");
        output.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");
        // Relative to the floor measured beside it, so a busy machine does not fail it: replacing the whole table
        // (~70x the floor at 1,000 clients, docs/isolation-backends.md §2b) would; one chain stays a few floors.
        Assert.True(P(apply, 0.5) < 6 * P(floor, 0.5) + 20, $"one chain took p50 {P(apply, 0.5):F1} ms, floor {P(floor, 0.5):F1} ms");
    }

    private static double P(List<double> values, double q) => values.Order().ElementAt((int)Math.Min(values.Count - 1, Math.Floor(q * values.Count)));

}
