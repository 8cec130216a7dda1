using System.Net;
using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;
using Xunit;

namespace QubesActors.Sandbox.Tests.Network;

public sealed class FirewallCompilerTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(2_000_000_000);
    private static readonly NetworkDomain SysFirewall = new("sys-firewall", 3, netVm: "sys-net", providesNetwork: true);
    private static readonly NetworkDomain Work = new("work", 7, netVm: "sys-firewall");
    private static readonly LinkPlan Link = NetworkPlanner.PlanLink(Work, SysFirewall, new NetworkNaming("qa-"));
    private static readonly IReadOnlyDictionary<string, IReadOnlyList<IPAddress>> NoNames = new Dictionary<string, IReadOnlyList<IPAddress>>();

    private static CompiledClientChain Compile(string rules, IReadOnlyDictionary<string, IReadOnlyList<IPAddress>>? names = null) =>
        FirewallCompiler.CompileClientChain(Link, FirewallRuleSet.ParseRules(rules), Now, names ?? NoNames);

    /// <summary>The rule lines of the chain, without the "add rule inet qubes-firewall qbs-q7 " prefix.</summary>
    private static List<string> RuleLines(CompiledClientChain chain) =>
        chain.Script.Split('\n')
            .Where(l => l.StartsWith("add rule inet qubes-firewall qbs-q7 ", StringComparison.Ordinal))
            .Select(l => l["add rule inet qubes-firewall qbs-q7 ".Length..]).ToList();

    [Fact]
    public void Script_creates_flushes_refills_then_points_the_map_entry_at_the_chain()
    {
        var script = Compile("action=accept proto=tcp dstports=80\n").Script;
        Assert.Equal(
            "add chain inet qubes-firewall qbs-q7\n" +
            "flush chain inet qubes-firewall qbs-q7\n" +
            "add rule inet qubes-firewall qbs-q7 meta l4proto tcp tcp dport 80 accept\n" +
            "add rule inet qubes-firewall qbs-q7 drop\n" +
            "add element inet qubes-firewall clients { \"vifq7\" . 10.137.0.7 : jump qbs-q7 }\n",
            script);
    }

    [Fact]
    public void Script_touches_only_this_clients_chain_and_map_entry()
    {
        var script = Compile("action=accept\n").Script;
        Assert.DoesNotContain("table inet", script.Replace("inet qubes-firewall qbs-q7", "").Replace("inet qubes-firewall clients", ""));
        Assert.DoesNotContain("delete", script);
        Assert.DoesNotContain("forward", script);
    }

    [Fact]
    public void Default_rules_accept_everything_then_fixed_drop() =>
        Assert.Equal(["accept", "drop"], RuleLines(FirewallCompiler.CompileClientChain(Link, FirewallRules.Default, Now, NoNames)));

    [Fact]
    public void Empty_rule_list_drops_everything() =>
        Assert.Equal(["drop"], RuleLines(FirewallCompiler.CompileClientChain(Link, FirewallRules.Empty, Now, NoNames)));

    [Theory]
    [InlineData("action=accept dst4=192.168.201.10", "ip daddr 192.168.201.10 accept")]
    [InlineData("action=drop dst4=10.1.2.3/16", "ip daddr 10.1.0.0/16 drop")]
    [InlineData("action=accept dsthost=0.0.0.0/0", "ip daddr 0.0.0.0/0 accept")]
    [InlineData("action=accept proto=tcp dstports=1000-2000", "meta l4proto tcp tcp dport 1000-2000 accept")]
    [InlineData("action=accept proto=udp dstports=123", "meta l4proto udp udp dport 123 accept")]
    [InlineData("action=drop proto=icmp", "meta l4proto icmp drop")]
    [InlineData("action=accept proto=icmp icmptype=8", "meta l4proto icmp icmp type 8 accept")]
    [InlineData("action=accept dst4=192.168.201.0/24 proto=tcp dstports=443", "ip daddr 192.168.201.0/24 meta l4proto tcp tcp dport 443 accept")]
    [InlineData("action=accept specialtarget=dns", "meta l4proto @dns-protocols th dport 53 ct original ip daddr @virtual-dns accept")]
    [InlineData("action=accept proto=udp specialtarget=dns", "meta l4proto udp th dport 53 ct original ip daddr @virtual-dns accept")]
    [InlineData("action=drop proto=tcp specialtarget=dns", "meta l4proto tcp th dport 53 ct original ip daddr @virtual-dns drop")]
    [InlineData("action=accept proto=tcp dstports=80 comment=web server", "meta l4proto tcp tcp dport 80 accept")]
    public void Rules_compile_to_nft_matches(string rule, string expected) =>
        Assert.Equal([expected, "drop"], RuleLines(Compile(rule)));

    [Fact]
    public void Rules_keep_their_order()
    {
        var lines = RuleLines(Compile("action=drop dst4=192.168.201.20\naction=accept proto=tcp\naction=drop proto=udp\naction=accept\n"));
        Assert.Equal(["ip daddr 192.168.201.20 drop", "meta l4proto tcp accept", "meta l4proto udp drop", "accept", "drop"], lines);
    }

    [Fact]
    public void Expired_rules_are_left_out_and_the_next_expiry_is_reported()
    {
        var past = Now.ToUnixTimeSeconds() - 1;
        var soon = Now.ToUnixTimeSeconds() + 60;
        var later = Now.ToUnixTimeSeconds() + 600;
        var chain = Compile($"action=accept expire={past} proto=tcp\naction=accept expire={later} proto=udp\naction=accept expire={soon} proto=icmp\n");
        Assert.Equal(["meta l4proto udp accept", "meta l4proto icmp accept", "drop"], RuleLines(chain));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(soon), chain.NextExpiry);
    }

    [Fact]
    public void A_rule_expiring_exactly_now_is_expired()
    {
        var chain = Compile($"action=accept expire={Now.ToUnixTimeSeconds()}\n");
        Assert.Equal(["drop"], RuleLines(chain));
        Assert.Null(chain.NextExpiry);
    }

    [Fact]
    public void Dns_names_use_the_addresses_resolved_when_applied_ipv4_only()
    {
        var names = new Dictionary<string, IReadOnlyList<IPAddress>>
        {
            ["example.org"] = [IPAddress.Parse("192.0.2.1"), IPAddress.Parse("2001:db8::1"), IPAddress.Parse("192.0.2.2")],
        };
        var chain = Compile("action=accept dsthost=example.org proto=tcp dstports=443\n", names);
        Assert.Equal(["ip daddr { 192.0.2.1, 192.0.2.2 } meta l4proto tcp tcp dport 443 accept", "drop"], RuleLines(chain));
        Assert.False(chain.FailedClosed);
    }

    [Theory]
    [InlineData("action=accept dsthost=nowhere.example\naction=accept proto=tcp\n")]
    [InlineData("action=accept proto=tcp\naction=drop dsthost=nowhere.example\naction=accept\n")]
    public void An_unresolved_name_fails_closed_the_whole_chain(string rules)
    {
        var chain = Compile(rules);
        Assert.True(chain.FailedClosed);
        Assert.Equal(["drop"], RuleLines(chain));
        Assert.Contains(chain.Problems, p => p.Contains("nowhere.example", StringComparison.Ordinal));
    }

    [Fact]
    public void A_name_resolving_only_to_ipv6_fails_closed()
    {
        var names = new Dictionary<string, IReadOnlyList<IPAddress>> { ["v6only.example"] = [IPAddress.Parse("2001:db8::1")] };
        Assert.True(Compile("action=drop dsthost=v6only.example\naction=accept\n", names).FailedClosed);
    }

    [Fact]
    public void Ipv6_rules_are_left_out_with_a_note()
    {
        var chain = Compile("action=accept dst6=2001:db8::/32\naction=accept proto=tcp\n");
        Assert.Equal(["meta l4proto tcp accept", "drop"], RuleLines(chain));
        Assert.False(chain.FailedClosed);
        Assert.Single(chain.Problems);
    }

    [Fact]
    public void Dns_special_target_with_icmp_never_matches_and_is_left_out() =>
        Assert.Equal(["drop"], RuleLines(Compile("action=accept proto=icmp specialtarget=dns\n")));

    [Fact]
    public void Names_to_resolve_are_the_unexpired_distinct_names()
    {
        var rules = FirewallRuleSet.ParseRules(
            $"action=accept dsthost=a.example\naction=drop dsthost=a.example\naction=accept expire={Now.ToUnixTimeSeconds() - 5} dsthost=old.example\naction=accept dst4=192.0.2.1\n");
        Assert.Equal(["a.example"], FirewallCompiler.NamesToResolve(rules, Now));
    }

    [Fact]
    public void Remove_script_is_idempotent_by_adding_before_deleting()
    {
        var script = FirewallCompiler.RemoveClientChain(Link);
        var lines = script.TrimEnd('\n').Split('\n');
        Assert.Equal("add chain inet qubes-firewall qbs-q7", lines[0]);
        Assert.StartsWith("add element inet qubes-firewall clients", lines[1], StringComparison.Ordinal);
        Assert.Equal("delete element inet qubes-firewall clients { \"vifq7\" . 10.137.0.7 }", lines[2]);
        Assert.Equal("delete chain inet qubes-firewall qbs-q7", lines[^1]);
    }

    [Fact]
    public void Netvm_base_drops_by_policy_isolates_clients_and_masquerades_outwards()
    {
        var naming = new NetworkNaming("qa-");
        var plan = NetworkPlanner.Plan([new NetworkDomain("sys-net", 2, providesNetwork: true), SysFirewall], naming, [IPAddress.Parse("192.168.201.10")]);
        var edge = FirewallCompiler.NetVmBaseScript(plan["sys-net"].NetVm!);
        Assert.Contains("policy drop;", edge);
        Assert.Contains("ct state established,related accept", edge);
        Assert.Contains("ct state invalid drop", edge);
        Assert.Contains("iifname \"vif*\" oifname \"vif*\" drop", edge);
        Assert.Contains("iifname . ip saddr vmap @clients", edge);
        Assert.Contains("ip daddr 10.139.1.1 meta l4proto { tcp, udp } th dport 53 dnat to 192.168.201.10", edge);
        Assert.Contains("oifname \"eth0\" masquerade", edge);
        Assert.DoesNotContain("@virtual-dns drop", edge);

        var proxy = FirewallCompiler.NetVmBaseScript(plan["sys-firewall"].NetVm!);
        Assert.DoesNotContain("dnat", proxy);
        Assert.Contains("masquerade", proxy);
    }

    [Fact]
    public void Edge_netvm_without_resolvers_drops_virtual_dns_before_client_chains()
    {
        var plan = NetworkPlanner.Plan([new NetworkDomain("sys-net", 2, providesNetwork: true)], new NetworkNaming("qa-"));
        var script = FirewallCompiler.NetVmBaseScript(plan["sys-net"].NetVm!);
        var drop = script.IndexOf("ip daddr @virtual-dns drop", StringComparison.Ordinal);
        Assert.True(drop > 0);
        Assert.True(drop < script.IndexOf("vmap @clients", StringComparison.Ordinal));
    }
}
