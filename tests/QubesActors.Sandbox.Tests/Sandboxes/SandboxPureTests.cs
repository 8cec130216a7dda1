using QubesActors.Core.Model;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Launch;
using QubesActors.Sandbox.Storage;
using Xunit;

namespace QubesActors.Sandbox.Tests.Sandboxes;

/// <summary>The pure parts: cgroup paths and knobs per hierarchy, volumes per qube class, the bubblewrap command line.</summary>
public sealed class SandboxPureTests
{
    [Fact]
    public void Cgroup_v1_uses_one_directory_per_controller_and_v2_one_with_its_own_knobs()
    {
        var v1 = new CgroupLayout(CgroupVersion.V1, "/cg", "qa");
        Assert.Equal(["/cg/freezer/qa/work", "/cg/memory/qa/work", "/cg/pids/qa/work", "/cg/cpu/qa/work"], v1.Directories("work"));
        Assert.Contains(("/cg/cpu/qa/work/cpu.cfs_quota_us", "200000"), v1.Limits("work", 1048576, 64, vcpus: 2));
        Assert.DoesNotContain(v1.Limits("work", 1048576, 64), l => l.File.Contains("cpu.", StringComparison.Ordinal));
        Assert.Equal(("/cg/freezer/qa/work/freezer.state", "FROZEN", "THAWED"), v1.Freezer("work"));
        Assert.Contains(("/cg/memory/qa/work/memory.limit_in_bytes", "1048576"), v1.Limits("work", 1048576, 64));
        Assert.Contains(("/cg/pids/qa/work/pids.max", "64"), v1.Limits("work", 1048576, 64));

        var v2 = new CgroupLayout(CgroupVersion.V2, "/cg", "qa");
        Assert.Equal(["/cg/qa/work"], v2.Directories("work"));
        Assert.Equal(("/cg/qa/work/cgroup.freeze", "1", "0"), v2.Freezer("work"));
        Assert.Contains(("/cg/qa/work/memory.max", "1048576"), v2.Limits("work", 1048576, 64));
        Assert.Contains(("/cg/qa/work/memory.swap.max", "0"), v2.Limits("work", 1048576, 64));
        Assert.Contains(("/cg/qa/work/cpu.max", "100000 100000"), v2.Limits("work", 1048576, 64, vcpus: 1));
        Assert.Equal(["/cg/qa/work/cgroup.procs"], v2.ProcsFiles("work"));
    }

    [Fact]
    public void Volumes_follow_the_qube_class()
    {
        var app = SandboxVolumes.For("/s", "work", QubeClass.AppVM, "debian");
        Assert.Equal(("/s/templates/debian/root", "/s/qubes/work/merged", "/s/qubes/work/private", false), (app.Lower, app.Root, app.Private, app.Volatile));
        Assert.Equal("lowerdir=/s/templates/debian/root,upperdir=/s/qubes/work/volatile/upper,workdir=/s/qubes/work/volatile/work", app.OverlayOptions);

        var template = SandboxVolumes.For("/s", "debian", QubeClass.TemplateVM, null);
        Assert.False(template.IsOverlay);
        Assert.Equal("/s/templates/debian/root", template.Root);

        var standalone = SandboxVolumes.For("/s", "solo", QubeClass.StandaloneVM, null);
        Assert.Equal("/s/qubes/solo/root", standalone.Root);

        var disp = SandboxVolumes.For("/s", "disp12", QubeClass.DispVM, "debian");
        Assert.True(disp.Volatile);
        Assert.StartsWith("/s/qubes/disp12/volatile/", disp.Private); // on the tmpfs: nothing survives

        Assert.Throws<ArgumentException>(() => SandboxVolumes.For("/s", "work", QubeClass.AppVM, null));
    }

    [Fact]
    public void The_launch_joins_the_cgroups_before_bubblewrap_and_unshares_the_network_only_without_a_netvm()
    {
        var offline = new BwrapCommand("vault", "/r", false, "/p", "/run", ["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"], null).Arguments();
        Assert.Equal("-c", offline[0]);
        var dashDash = offline.ToList().IndexOf("--");
        Assert.Equal(["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"], offline.Skip(3).Take(dashDash - 3));
        Assert.Equal("/usr/bin/bwrap", offline[dashDash + 1]);
        Assert.Contains("--unshare-net", offline);
        Assert.Contains("--cap-drop", offline);
        Assert.DoesNotContain("--die-with-parent", offline); // sandboxes outlive qubesd
        Assert.Equal("/sbin/qubes-init", offline[^1]);

        var online = new BwrapCommand("work", "/r", false, "/p", "/run", ["/cg/cgroup.procs"], "qa-work").Arguments();
        var at = online.ToList().IndexOf("--");
        // The launcher is started inside the namespace (no `ip netns exec` process): bwrap simply keeps it.
        Assert.Equal("/usr/bin/bwrap", online[at + 1]);
        Assert.DoesNotContain("--unshare-net", online);
    }
}
