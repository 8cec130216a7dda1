using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;
using Xunit;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// One client's chain replaced among 1,000 loaded (the per-chain update the firewall relies on), on its own topology.
/// Timings are not asserted here (benchmarks belong in tools/; docs/sandbox-network.md has the figures measured with an
/// earlier version of this test, commit 211b1e1).
/// </summary>
[Collection(RealNetworkCollection.Name)]
public sealed class NetworkScaleTests
{
    [Fact]
    public async Task One_chain_is_replaced_among_1000_loaded_and_the_others_stay()
    {
        await using var net = await StartAsync();
        var firewallNs = net.Naming.NamespaceOf(SysFirewall);

        // Attach = namespace + veth/addresses/routes + its chain; 10 qubes.
        for (var qid = 100; qid < 110; qid++)
        {
            var qube = new NetworkDomain($"bench{qid}", qid, netVm: "sys-firewall");
            await net.AddQubeAsync(qube, "action=accept proto=tcp dstports=80\n");
        }

        // 1,000 clients' chains (5 rules each) loaded in one transaction; their vifs need not exist for the map.
        var rules = FirewallRuleSet.ParseRules("action=accept dst4=192.168.201.10 proto=tcp dstports=80\naction=accept specialtarget=dns\naction=drop proto=icmp\naction=accept proto=tcp dstports=1000-2000\naction=drop dst4=10.0.0.0/8\n");
        var links = Enumerable.Range(1000, 1000).Select(qid => NetworkPlanner.PlanLink(new NetworkDomain($"c{qid}", qid, netVm: "sys-firewall"), SysFirewall, net.Naming)).ToList();
        await net.Shell.NftAsync(firewallNs, string.Concat(links.Select(l => FirewallCompiler.CompileClientChain(l, rules, net.Now, NoNames).Script)));

        var target = links[500];
        for (var i = 0; i < 20; i++)
        {
            var changed = FirewallRuleSet.ParseRules($"action=accept proto=tcp dstports={2000 + i}\n");
            await net.Shell.ApplyClientChainAsync(target, FirewallCompiler.CompileClientChain(target, changed, net.Now, NoNames));
        }
        var chain = await RunOkAsync("ip", "netns", "exec", firewallNs, "nft", "list", "chain", "inet", "qubes-firewall", target.ChainName);
        Assert.Contains("tcp dport 2019 accept", chain, StringComparison.Ordinal);

        // The neighbours are untouched.
        var neighbour = await RunOkAsync("ip", "netns", "exec", firewallNs, "nft", "list", "chain", "inet", "qubes-firewall", links[499].ChainName);
        Assert.Contains("tcp dport 1000-2000 accept", neighbour, StringComparison.Ordinal);
    }


}
