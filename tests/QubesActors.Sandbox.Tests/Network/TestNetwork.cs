using System.Diagnostics;
using System.Net;
using QubesActors.Core.Firewall;
using QubesActors.Sandbox.Network;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// A real Qubes-like network for one test: an uplink namespace standing for the outside world (192.168.201.10
/// and .20 on its lo, TCP servers that answer "ok"), sys-net (q2) linked to it, sys-firewall (q3) behind sys-net,
/// and the app qubes a test adds. Every namespace carries a prefix unique to this run and is deleted on dispose;
/// the host namespace gets no address or route.
/// </summary>
internal sealed class TestNetwork : IAsyncDisposable
{
    public static readonly IPAddress Internet10 = IPAddress.Parse("192.168.201.10");
    public static readonly IPAddress Internet20 = IPAddress.Parse("192.168.201.20");
    public static readonly int[] ServerPorts = [80, 8080, 53, 1500, 3000];

    public static readonly NetworkDomain SysNet = new("sys-net", 2, providesNetwork: true);
    public static readonly NetworkDomain SysFirewall = new("sys-firewall", 3, netVm: "sys-net", providesNetwork: true);

    private readonly List<Process> _servers = [];
    private readonly List<string> _namespaces = [];
    private readonly Dictionary<string, NetworkDomain> _domains = new(StringComparer.Ordinal);
    private readonly HashSet<string> _fixed = new(StringComparer.Ordinal);

    private TestNetwork(NetworkNaming naming)
    {
        Naming = naming;
        UplinkNamespace = naming.Prefix + "up";
    }

    public NetworkNaming Naming { get; }
    public LinuxNetwork Shell { get; } = new();
    public string UplinkNamespace { get; }
    public DateTimeOffset Now { get; } = DateTimeOffset.UtcNow;

    /// <summary>Fails (never skips) when the machine cannot run the test: root and ip, nft, busybox are required.</summary>
    public static void RequireRootAndTools()
    {
        var uid = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[2];
        if (uid != "0")
            throw new InvalidOperationException($"the network tests need root (effective uid is {uid}); CI runs them as root");
        foreach (var tool in new[] { "ip", "nft", "busybox", "sysctl" })
        {
            var found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/sbin").Append("/sbin")
                .Any(dir => File.Exists(Path.Combine(dir, tool)));
            if (!found)
                throw new InvalidOperationException($"the network tests need `{tool}` (apt-get install iproute2 nftables busybox-static procps)");
        }
    }

    /// <summary>Uplink, sys-net (redirecting DNS to 192.168.201.10) and sys-firewall, with the servers running.</summary>
    public static async Task<TestNetwork> StartAsync()
    {
        RequireRootAndTools();
        var network = new TestNetwork(new NetworkNaming($"qt{Guid.NewGuid().ToString("N")[..6]}-"));
        try
        {
            await network.CreateUplinkAsync();
            var plan = NetworkPlanner.Plan([SysNet, SysFirewall], network.Naming, [Internet10]);
            await network.AddNetVmAsync(plan["sys-net"]);
            await network.Shell.LinkUplinkAsync(NetworkPlanner.PlanUplink(SysNet, network.Naming, network.UplinkNamespace,
                IPAddress.Parse("192.168.200.1"), IPAddress.Parse("192.168.200.2"), 24));
            await network.AddNetVmAsync(plan["sys-firewall"]);
            network._fixed.UnionWith(network._namespaces);
            return network;
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }
    }

    /// <summary>Only the uplink and its servers: for tests whose netvms are real sandboxes (the backend's own).</summary>
    public static async Task<TestNetwork> StartUplinkOnlyAsync()
    {
        RequireRootAndTools();
        var network = new TestNetwork(new NetworkNaming($"qt{Guid.NewGuid().ToString("N")[..6]}-"));
        try
        {
            await network.CreateUplinkAsync();
            return network;
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }
    }

    private async Task CreateUplinkAsync()
    {
        _namespaces.Add(UplinkNamespace);
        await Shell.CreateNamespaceAsync(UplinkNamespace);
        // No dummy driver on this kernel: the "internet" hosts are addresses on the uplink's lo.
        await RunOkAsync("ip", "-n", UplinkNamespace, "addr", "add", $"{Internet10}/32", "dev", "lo");
        await RunOkAsync("ip", "-n", UplinkNamespace, "addr", "add", $"{Internet20}/32", "dev", "lo");
        foreach (var port in ServerPorts)
            _servers.Add(Process.Start(new ProcessStartInfo("ip", ["netns", "exec", UplinkNamespace, "busybox", "nc", "-ll", "-p", $"{port}", "-e", "/bin/echo", "ok"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
            })!);
        await Task.WhenAll(ServerPorts.Select(port =>
            WaitUntilAsync(async () => (await ConnectAsync(UplinkNamespace, Internet10, port)).Connected, $"server on port {port} in the uplink")));
    }

    private async Task AddNetVmAsync(DomainNetworkPlan plan)
    {
        _domains[plan.Domain.Name] = plan.Domain;
        _namespaces.Add(plan.Namespace);
        await Shell.CreateNamespaceAsync(plan.Namespace);
        await Shell.SetUpNetVmAsync(plan.NetVm!);
        if (plan.Link is { } link)
        {
            await Shell.LinkAsync(link);
            await Shell.ApplyClientChainAsync(link, FirewallCompiler.CompileClientChain(link, FirewallRules.Default, Now, NoNames));
        }
    }

    /// <summary>Another netvm behind sys-net, e.g. to move a client to.</summary>
    public async Task AddProxyNetVmAsync(NetworkDomain netVm)
    {
        var plan = NetworkPlanner.Plan([SysNet, netVm], Naming, [Internet10]);
        await AddNetVmAsync(plan[netVm.Name]);
    }

    /// <summary>Starts a qube's namespace; with a netvm, links it and applies its rules (null = none set: accept all).</summary>
    public async Task<LinkPlan?> AddQubeAsync(NetworkDomain qube, string? rules = null)
    {
        _domains[qube.Name] = qube;
        var ns = Naming.NamespaceOf(qube);
        _namespaces.Add(ns);
        await Shell.CreateNamespaceAsync(ns);
        if (qube.NetVm is null)
            return null;
        var link = NetworkPlanner.PlanLink(qube, _domains[qube.NetVm], Naming);
        await Shell.LinkAsync(link);
        await ApplyRulesAsync(link, rules);
        return link;
    }

    /// <summary>The namespaces shared by every test of the class: uplink, sys-net, sys-firewall.</summary>
    public IReadOnlySet<string> FixedNamespaces => _fixed;

    /// <summary>
    /// Deletes what one test added (its qubes, with their links and chains), leaving the shared uplink, sys-net
    /// and sys-firewall as they were.
    /// </summary>
    public IAsyncDisposable Scope() => new TestScope(this);

    private sealed class TestScope(TestNetwork net) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var domain in net._domains.Values.Where(d => !net._fixed.Contains(net.Naming.NamespaceOf(d))).ToList())
            {
                if (domain.NetVm is { } netVm && net._domains.TryGetValue(netVm, out var netVmDomain))
                    await net.Shell.UnlinkAsync(NetworkPlanner.PlanLink(domain, netVmDomain, net.Naming));
            }
            foreach (var domain in net._domains.Values.Where(d => !net._fixed.Contains(net.Naming.NamespaceOf(d))).ToList())
            {
                await net.Shell.DeleteNamespaceAsync(net.Naming.NamespaceOf(domain));
                net._domains.Remove(domain.Name);
            }
            net._namespaces.RemoveAll(ns => !net._fixed.Contains(ns));
        }
    }

    public LinkPlan PlanLink(NetworkDomain client) => NetworkPlanner.PlanLink(client, _domains[client.NetVm!], Naming);

    public void Register(NetworkDomain domain) => _domains[domain.Name] = domain;

    public Task ApplyRulesAsync(LinkPlan link, string? rules)
    {
        var parsed = rules is null ? FirewallRules.Default : FirewallRuleSet.ParseRules(rules);
        return Shell.ApplyClientChainAsync(link, FirewallCompiler.CompileClientChain(link, parsed, Now, NoNames));
    }

    public static readonly IReadOnlyDictionary<string, IReadOnlyList<IPAddress>> NoNames = new Dictionary<string, IReadOnlyList<IPAddress>>();

    public sealed record Connection(bool Connected, string Output);

    /// <summary>A TCP connection from inside a namespace: connected when the server's "ok" came back.</summary>
    public static async Task<Connection> ConnectAsync(string ns, IPAddress address, int port)
    {
        var (exit, stdout, stderr) = await RunAsync("ip", "netns", "exec", ns, "busybox", "nc", "-w", "1", $"{address}", $"{port}");
        return new Connection(exit == 0 && stdout.Trim() == "ok", $"rc={exit} out='{stdout.Trim()}' err='{stderr.Trim()}'");
    }

    public Task<Connection> ConnectAsync(NetworkDomain qube, IPAddress address, int port) => ConnectAsync(Naming.NamespaceOf(qube), address, port);

    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        })!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    public static async Task<string> RunOkAsync(string file, params string[] arguments)
    {
        var (exit, stdout, stderr) = await RunAsync(file, arguments);
        if (exit != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)}: rc {exit}: {stderr}");
        return stdout;
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(3);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{what} did not come up within 3 s");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            try
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
            server.Dispose();
        }
        // Everything this run created carries its prefix: delete it all, also what a failed step left behind.
        var ours = (await Shell.ListNamespacesAsync()).Where(Naming.Owns).Concat(_namespaces).Distinct();
        foreach (var ns in ours)
            await Shell.DeleteNamespaceAsync(ns);
    }
}
