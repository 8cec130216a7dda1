using Xunit;

namespace QubesActors.IntegrationTests.Sandbox;

/// <summary>
/// qubesd on the sandbox backend, driven through the Admin API: the default layout's qubes as real sandboxes on the
/// Qubes network, firewall changes reaching sys-firewall's nftables, and a SIGKILL of qubesd with sandboxes running.
/// </summary>
[Collection(SandboxDaemonCollection.Name)]
public sealed class SandboxDaemonTests : IAsyncLifetime
{
    private readonly SandboxDaemon _sd = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _sd.DisposeAsync();

    private async Task<string> InsideAsync(string qube, params string[] command)
    {
        var pid = _sd.Processes()[qube].Min();
        return await SandboxDaemon.RunAsync("nsenter", ["-t", $"{pid}", "-n", "--", .. command]);
    }

    [Fact]
    public async Task The_default_layout_runs_as_sandboxes_on_the_qubes_network_and_the_firewall_reaches_sys_firewall()
    {
        var daemon = await _sd.StartAsync();
        var states = await _sd.StatesAsync();
        Assert.Equal(("Running", "Running", "Running"), (states["sys-net"], states["sys-firewall"], states["sys-usb"]));
        _ = (await daemon.CallAsync("admin.vm.Start", "work")).OkText;
        _ = (await daemon.CallAsync("admin.vm.Start", "vault")).OkText;
        Assert.Equal("Running", (await _sd.StatesAsync())["work"]);

        var ip = (await daemon.CallAsync("admin.vm.property.Get", "work", "ip")).OkText.Split(' ')[^1];
        var workAddresses = await InsideAsync("work", "ip", "-4", "-o", "addr", "show", "dev", "eth0");
        Assert.Contains($"inet {ip}/32", workAddresses);
        var routes = await InsideAsync("work", "ip", "route");
        var firewallIp = (await daemon.CallAsync("admin.vm.property.Get", "sys-firewall", "ip")).OkText.Split(' ')[^1];
        Assert.Contains($"default via {firewallIp} dev eth0", routes);
        // The gateway answers: the link is up and sys-firewall's input chain lets clients ping it.
        await InsideAsync("work", "busybox", "ping", "-c", "1", "-W", "2", firewallIp);
        // A qube without a netvm has nothing but loopback.
        Assert.DoesNotContain("eth0", await InsideAsync("vault", "ip", "-o", "link"));

        _ = (await daemon.CallAsync("admin.vm.firewall.Set", "work", payload: "action=accept dst4=192.0.2.7 proto=tcp dstports=443\naction=drop\n")).OkText;
        var chain = "";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!chain.Contains("192.0.2.7", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            var firewallNs = (await _sd.NamespacesAsync()).Single(n => n.EndsWith($"q{firewallIp.Split('.')[^1]}", StringComparison.Ordinal));
            chain = await SandboxDaemon.RunAsync("ip", "netns", "exec", firewallNs, "nft", "list", "chain", "inet", "qubes-firewall", $"qbs-q{ip.Split('.')[^1]}");
            await Task.Delay(50);
        }
        Assert.Contains("ip daddr 192.0.2.7 tcp dport 443 accept", chain);
        Assert.Contains("drop", chain);

        // qubesd joined every one of these qubes' networks to wire them and start their sandboxes; none of its own
        // threads stayed there (a runtime thread born in one would do later work, a program start, a DNS look-up for
        // a firewall rule, inside that qube's network).
        var dom0 = new FileInfo("/proc/self/ns/net").LinkTarget;
        var astray = Directory.GetDirectories($"/proc/{daemon.Pid}/task")
            .Select(task => (Task: task, Net: TryLink(Path.Combine(task, "ns", "net"))))
            .Where(t => t.Net is not null && t.Net != dom0)
            .Select(t => (t.Task, t.Net, Comm: TryRead(Path.Combine(t.Task, "comm"))))
            // The joiners themselves ("netns", ending with their job) may be at work right now.
            .Where(t => t.Comm != "netns")
            .Select(t => $"{Path.GetFileName(t.Task)} ({t.Comm}) in {t.Net}")
            .ToList();
        Assert.Empty(astray);
    }

    private static string? TryLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null; // the thread ended meanwhile
        }
    }

    private static string TryRead(string file)
    {
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (IOException)
        {
            return "?";
        }
    }

    [Fact]
    public async Task A_sigkill_of_qubesd_readopts_every_sandbox_restarts_none_and_leaks_nothing()
    {
        var daemon = await _sd.StartAsync();
        _ = (await daemon.CallAsync("admin.vm.Start", "work")).OkText;
        _ = (await daemon.CallAsync("admin.vm.Start", "vault")).OkText;
        _ = (await daemon.CallAsync("admin.vm.Pause", "vault")).OkText;
        var before = await _sd.StatesAsync();
        var processes = _sd.Processes();
        Assert.Equal(["sys-firewall", "sys-net", "sys-usb", "vault", "work"], processes.Keys.Order());

        daemon.Kill();
        daemon.Dispose();
        // The sandboxes do not depend on qubesd: the same processes, still there.
        Assert.Equal(processes.Keys.Order(), _sd.Processes().Keys.Order());

        daemon = await _sd.StartAsync();
        Assert.Equal(before, await _sd.StatesAsync());
        var after = _sd.Processes();
        foreach (var (qube, pids) in processes)
            Assert.True(pids.SetEquals(after[qube]), $"{qube} was restarted: processes {string.Join(',', pids)} became {string.Join(',', after[qube])}");
        // Still networked, and still managed: a new qubesd unpauses, stops and cleans them.
        var firewallIp = (await daemon.CallAsync("admin.vm.property.Get", "sys-firewall", "ip")).OkText.Split(' ')[^1];
        await InsideAsync("work", "busybox", "ping", "-c", "1", "-W", "2", firewallIp);
        _ = (await daemon.CallAsync("admin.vm.Unpause", "vault")).OkText;

        await _sd.ShutdownAllAsync();
        Assert.Empty(_sd.Processes().Values.SelectMany(p => p));
        Assert.Empty(await _sd.NamespacesAsync());
        Assert.Empty(_sd.Mounts());
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SandboxDaemonCollection
{
    public const string Name = "sandbox daemon";
}
