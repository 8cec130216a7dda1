using System.Collections.Concurrent;
using System.Diagnostics;
using QubesActors.Core.Model;
using QubesActors.Runtime.Backend;
using QubesActors.Sandbox.Network;
using Xunit;

namespace QubesActors.Sandbox.Tests.Sandboxes;

/// <summary>The sandbox backend as the qube actors drive it (IDomainBackend), on real sandboxes.</summary>
public sealed class SandboxBackendTests : IAsyncLifetime
{
    private TestStorage _t = null!;
    private SandboxBackend _backend = null!;
    private NetworkNaming _naming = null!;

    public Task InitializeAsync()
    {
        _t = new TestStorage();
        _naming = new NetworkNaming(_t.Prefix + "-");
        _backend = new SandboxBackend(_t.Manager, new SandboxNetwork(new LinuxNetwork(), _naming, _t.Storage));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _backend.Dispose();
        await _t.DisposeAsync();
        await new LinuxNetwork().CleanUpStaleAsync(_naming, new HashSet<string>());
    }

    private DomainSpec Spec(string name, string? netvm = null) =>
        new(Guid.NewGuid(), name, QubeClass.AppVM, 42, TestStorage.Template, netvm, "10.137.0.42", 128, 256, 1, false);

    [Fact]
    public async Task Start_pause_shutdown_and_listing_reach_the_sandbox()
    {
        var spec = Spec(_t.Name("be"));
        await _backend.StartAsync(spec, CancellationToken.None);
        Assert.Equal([new RunningDomain(spec.Uuid, spec.Name, PowerState.Running)], await _backend.ListDomainsAsync(CancellationToken.None));
        // maxmem (256 MiB) and vcpus (1) are the cgroup's limits.
        var limits = _t.Cgroups.Limits(spec.Name, 256L << 20, 512, vcpus: 1).ToDictionary(l => Path.GetFileName(l.File), l => l.File);
        Assert.Equal((256L << 20).ToString(), File.ReadAllText(limits[_t.Cgroups.Version == Cgroups.CgroupVersion.V1 ? "memory.limit_in_bytes" : "memory.max"]).Trim());
        Assert.Equal(_t.Cgroups.Version == Cgroups.CgroupVersion.V1 ? "100000" : "100000 100000",
            File.ReadAllText(limits[_t.Cgroups.Version == Cgroups.CgroupVersion.V1 ? "cpu.cfs_quota_us" : "cpu.max"]).Trim());
        await _backend.PauseAsync(spec.Name, CancellationToken.None);
        Assert.Equal(PowerState.Paused, Assert.Single(await _backend.ListDomainsAsync(CancellationToken.None)).State);
        Assert.False(await _backend.SuspendAsync(spec.Name, CancellationToken.None)); // no S3: paused instead
        await _backend.ResumeAsync(spec.Name, CancellationToken.None);
        await _backend.ShutdownAsync(spec.Name, CancellationToken.None);
        Assert.Empty(await _backend.ListDomainsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_sandbox_that_dies_unasked_is_reported_as_a_crashed_domain()
    {
        var died = new ConcurrentQueue<BackendEvent>();
        using var subscription = _backend.Subscribe(died.Enqueue);
        var spec = Spec(_t.Name("dies"));
        await _backend.StartAsync(spec, CancellationToken.None);
        foreach (var pid in File.ReadAllLines(_t.Cgroups.PidsFile(spec.Name)))
            Process.Start("kill", ["-9", pid])!.WaitForExit();
        var clock = Stopwatch.StartNew();
        while (died.IsEmpty && clock.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(10);
        var e = Assert.IsType<BackendEvent.DomainDied>(Assert.Single(died));
        Assert.Equal((spec.Name, true), (e.Domain, e.Crashed));
    }

    [Fact]
    public async Task A_qube_whose_netvm_is_not_running_does_not_start_and_leaves_no_namespace()
    {
        var spec = Spec(_t.Name("net"), netvm: "sys-firewall");
        var error = await Assert.ThrowsAsync<BackendException>(() => _backend.StartAsync(spec, CancellationToken.None));
        Assert.Contains("netvm sys-firewall is not running", error.Message);
        Assert.Empty(await _backend.ListDomainsAsync(CancellationToken.None));
        Assert.DoesNotContain((await new LinuxNetwork().ListNamespacesAsync()), _naming.Owns);
    }

    [Fact]
    public async Task A_stopped_sandbox_leaves_no_namespace_behind()
    {
        var spec = Spec(_t.Name("ns"));
        await _backend.StartAsync(spec, CancellationToken.None);
        Assert.Single(await new LinuxNetwork().ListNamespacesAsync(), _naming.Owns);
        await _backend.KillAsync(spec.Name, CancellationToken.None);
        Assert.DoesNotContain((await new LinuxNetwork().ListNamespacesAsync()), _naming.Owns);
    }

    [Fact]
    public async Task A_dom0_loop_device_is_announced_listed_attached_into_the_frontends_dev_and_detached()
    {
        var events = new ConcurrentQueue<BackendEvent>();
        using var subscription = _backend.Subscribe(events.Enqueue);
        await _backend.Blocks.PollAsync(CancellationToken.None); // the listing before the loop device exists
        var file = Path.Combine("/var/tmp", "qa-be-" + Guid.NewGuid().ToString("N")[..8] + ".img");
        File.WriteAllBytes(file, new byte[1 << 20]);
        var losetup = Process.Start(new ProcessStartInfo("losetup", ["--find", "--show", file]) { RedirectStandardOutput = true })!;
        var loop = (await losetup.StandardOutput.ReadToEndAsync()).Trim();
        await losetup.WaitForExitAsync();
        try
        {
            await _backend.Blocks.PollAsync(CancellationToken.None);
            var appeared = Assert.Single(events.OfType<BackendEvent.DeviceAppeared>(), e => e.Device.Port == Path.GetFileName(loop));
            var device = Assert.Single(await _backend.ListDevicesAsync("dom0", CancellationToken.None), d => d.Port == Path.GetFileName(loop));
            Assert.Equal(("block", "dom0", file), (device.DeviceClass, appeared.Domain, device.Description));

            var spec = Spec(_t.Name("blk"));
            await _backend.StartAsync(spec, CancellationToken.None);
            var node = $"/proc/{_t.Manager.InitPidOf(spec.Name)}/root/dev/xvdi";
            await _backend.AttachDeviceAsync(spec.Name, device, new Dictionary<string, string> { ["read-only"] = "True" }, CancellationToken.None);
            Assert.True(File.Exists(node), "the frontend has /dev/xvdi");
            await _backend.DetachDeviceAsync(spec.Name, device, CancellationToken.None);
            Assert.False(File.Exists(node), "detached: /dev/xvdi is gone");
            var error = await Assert.ThrowsAsync<BackendException>(() =>
                _backend.AttachDeviceAsync(spec.Name, device, new Dictionary<string, string> { ["no-such-option"] = "1" }, CancellationToken.None));
            Assert.Contains("no-such-option", error.Message);
        }
        finally
        {
            Process.Start("losetup", ["-d", loop])!.WaitForExit();
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_disposable_is_killed_without_error_and_leaves_nothing_and_a_second_kill_is_harmless()
    {
        var spec = Spec(_t.Name("disp")) with { Class = QubeClass.DispVM, Template = "default-dvm", RootTemplate = TestStorage.Template, DispId = 77, Ip = "10.138.0.77" };
        await _backend.StartAsync(spec, CancellationToken.None);
        await _backend.KillAsync(spec.Name, CancellationToken.None);
        Assert.False(Directory.Exists(Path.Combine(_t.Storage, "qubes", spec.Name)), "nothing of the disposable is left");
        Assert.DoesNotContain(await new LinuxNetwork().ListNamespacesAsync(), _naming.Owns);
        await _backend.KillAsync(spec.Name, CancellationToken.None);
    }
}
