using QubesActors.IntegrationTests.AdminApi;
using Xunit;

namespace QubesActors.IntegrationTests.Cli;

/// <summary>Start and shutdown across the netvm chain, on a daemon of its own (these stop the layout's service qubes).</summary>
public sealed class QvmLifecycleTests(AdminDaemonFixture fixture) : IClassFixture<AdminDaemonFixture>
{
    private Task<QvmResult> Qvm(params string[] args) => QvmRunner.RunAsync(fixture.Daemon.SocketPath, args);

    private async Task<string[]> Running() => (await Qvm("ls", "--raw-list", "--running")).OutLines;

    [Fact]
    public async Task Shutdown_all_wait_then_start_through_the_netvm_chain()
    {
        var all = await Qvm("shutdown", "--all", "--wait");
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.Equal(["dom0"], await Running());
        // Not a terminal: progress is plain lines on stderr, one per halted qube.
        Assert.Contains("Halted: sys-net", all.Err.Split('\n'));

        var start = await Qvm("start", "work");
        Assert.True(start.ExitCode == 0, start.ToString());
        Assert.Contains("Starting sys-net → sys-firewall → work\n", start.Err, StringComparison.Ordinal);
        Assert.Contains("sys-net is running\n", start.Err, StringComparison.Ordinal);
        Assert.Equal(["dom0", "sys-firewall", "sys-net", "work"], await Running());

        var again = await Qvm("start", "work");
        Assert.Equal(1, again.ExitCode);
        Assert.Equal("Error: Domain is already running: 'work'\n", again.Err);
        Assert.Equal(0, (await Qvm("start", "--skip-if-running", "work")).ExitCode);

        // A chain of our own (the layout's sys-firewall is refused while dom0 counts as its client, see docs/qvm.md).
        Assert.Equal(0, (await Qvm("create", "-l", "red", "--prop", "provides_network=True", "--prop", "netvm=", "lc-net")).ExitCode);
        Assert.Equal(0, (await Qvm("create", "-l", "blue", "--prop", "netvm=lc-net", "lc-client")).ExitCode);
        Assert.Equal(0, (await Qvm("start", "lc-client")).ExitCode);
        Assert.Equal(["dom0", "lc-client", "lc-net", "sys-firewall", "sys-net", "work"], await Running());

        // Not forced: lc-net still has a running client, so it is refused; the exit code counts failures.
        var netvm = await Qvm("shutdown", "--wait", "lc-net");
        Assert.Equal(1, netvm.ExitCode);
        Assert.EndsWith("Error: Failed to shut down: lc-net: There are other VMs connected to this VM: lc-client\n", netvm.Err, StringComparison.Ordinal);

        // Clients first, then their netvms: the in-use retry rounds order it. Both are asked at once, so whether lc-net
        // is refused once (and retried) depends on which request qubesd sees first; the order of the halts does not.
        var chain = await Qvm("shutdown", "--wait", "lc-net", "lc-client");
        Assert.True(chain.ExitCode == 0, chain.ToString());
        var clientHalted = chain.Err.IndexOf("Halted: lc-client\n", StringComparison.Ordinal);
        var netHalted = chain.Err.IndexOf("Halted: lc-net\n", StringComparison.Ordinal);
        Assert.True(clientHalted >= 0 && netHalted > clientHalted, chain.ToString());
        if (chain.Err.Contains("Retrying", StringComparison.Ordinal))
            Assert.Contains("Error: Retrying shutdown of qubes that were in use: lc-net\n", chain.Err, StringComparison.Ordinal);
        Assert.Equal(["dom0", "sys-firewall", "sys-net", "work"], await Running());

        var dryRun = await Qvm("shutdown", "--all", "--dry-run");
        Assert.Equal(["would shut down sys-firewall (force)", "would shut down sys-net (force)", "would shut down work (force)"], dryRun.OutLines);
        Assert.Equal(["dom0", "sys-firewall", "sys-net", "work"], await Running());
    }
}
