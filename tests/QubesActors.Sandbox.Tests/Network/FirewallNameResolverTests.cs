using System.Net;
using System.Net.Sockets;
using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;
using Xunit;

namespace QubesActors.Sandbox.Tests.Network;

public sealed class FirewallNameResolverTests
{
    private static Task<IReadOnlyList<IPAddress>> Table(string name, CancellationToken ct) => name switch
    {
        "good.example" => Task.FromResult<IReadOnlyList<IPAddress>>([IPAddress.Parse("192.0.2.7")]),
        "empty.example" => Task.FromResult<IReadOnlyList<IPAddress>>([]),
        "slow.example" => Task.Delay(Timeout.Infinite, ct).ContinueWith<IReadOnlyList<IPAddress>>(_ => throw new OperationCanceledException(ct), TaskScheduler.Default),
        _ => throw new SocketException((int)SocketError.HostNotFound),
    };

    [Fact]
    public async Task Resolved_names_are_kept_failed_empty_and_slow_ones_are_left_out()
    {
        var resolved = await FirewallNameResolver.ResolveAsync(["good.example", "bad.example", "empty.example", "slow.example"], Table, TimeSpan.FromMilliseconds(200));
        Assert.Equal(["good.example"], resolved.Keys);
        Assert.Equal([IPAddress.Parse("192.0.2.7")], resolved["good.example"]);
    }

    [Fact]
    public async Task A_left_out_name_makes_the_chain_fail_closed()
    {
        var link = NetworkPlanner.PlanLink(new NetworkDomain("work", 7, netVm: "fw"), new NetworkDomain("fw", 3, providesNetwork: true), new NetworkNaming("qa-"));
        var rules = FirewallRuleSet.ParseRules("action=accept dsthost=good.example\naction=drop dsthost=bad.example\naction=accept\n");
        var now = DateTimeOffset.UtcNow;
        var resolved = await FirewallNameResolver.ResolveAsync(FirewallCompiler.NamesToResolve(rules, now), Table, TimeSpan.FromSeconds(1));
        var chain = FirewallCompiler.CompileClientChain(link, rules, now, resolved);
        Assert.True(chain.FailedClosed);
        Assert.DoesNotContain(" accept\n", chain.Script);
    }
}
