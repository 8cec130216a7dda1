using QubesActors.Sandbox.Cgroups;
using System.Diagnostics;
using QubesActors.Core.Model;
using Xunit;

namespace QubesActors.Sandbox.Tests.Sandboxes;

/// <summary>Real sandboxes (bubblewrap, overlays, cgroups) on a busybox template, as root.</summary>
public sealed class SandboxManagerTests : IAsyncLifetime
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);
    private TestStorage _t = null!;

    public Task InitializeAsync()
    {
        _t = new TestStorage();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _t.DisposeAsync();

    private SandboxSpec App(string name, int memoryMiB = 128) => new(name, QubeClass.AppVM, TestStorage.Template, memoryMiB);

    private async Task<string> AwaitFile(string name, string file, Func<string, bool>? done = null)
    {
        var path = Path.Combine(_t.Run(name), file);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < T)
        {
            if (File.Exists(path) && File.ReadAllText(path) is var text && (done?.Invoke(text) ?? text.EndsWith('\n')))
                return text;
            await Task.Delay(10);
        }
        throw new TimeoutException($"{path} did not appear; boot log: {(File.Exists(Path.Combine(_t.Run(name), "boot.log")) ? File.ReadAllText(Path.Combine(_t.Run(name), "boot.log")) : "none")}");
    }

    [Fact]
    public async Task A_started_sandbox_is_isolated_has_no_capabilities_and_no_network_without_a_netvm()
    {
        var name = _t.Name("iso");
        _t.Boot(name, """
            { hostname; ls /proc | grep -c '^[0-9]'; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; id -u; } > /run/qubes/facts.tmp
            mv /run/qubes/facts.tmp /run/qubes/facts
            """);
        await _t.Manager.StartAsync(App(name), CancellationToken.None);
        var facts = (await AwaitFile(name, "facts")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(name, facts[0]); // its own uts namespace
        Assert.True(int.Parse(facts[1]) < 10, $"{facts[1]} processes visible: not its own pid namespace");
        Assert.Equal("CapEff:\t0000000000000000", facts[2]);
        Assert.Equal("NoNewPrivs:\t1", facts[3]);
        Assert.Equal("lo", facts[4]); // a network namespace with only loopback
        Assert.Equal("0", facts[5]);
        // The host sees its processes in its cgroup.
        Assert.NotEmpty(File.ReadAllLines(_t.Cgroups.PidsFile(name)));
    }

    [Fact]
    public async Task An_AppVM_loses_root_changes_at_shutdown_keeps_its_private_volume_and_sees_template_changes_at_its_next_start()
    {
        var name = _t.Name("app");
        _t.Boot(name, """
            if [ -e /etc/changed-in-root ]; then echo root-kept; else echo root-fresh; fi > /run/qubes/result.tmp
            if [ -e /rw/changed-in-private ]; then echo private-kept; else echo private-fresh; fi >> /run/qubes/result.tmp
            if [ -e /etc/from-template ]; then echo template-seen; else echo template-unseen; fi >> /run/qubes/result.tmp
            touch /etc/changed-in-root /rw/changed-in-private
            mv /run/qubes/result.tmp /run/qubes/result
            """);
        await _t.Manager.StartAsync(App(name), CancellationToken.None);
        Assert.Equal("root-fresh\nprivate-fresh\ntemplate-unseen\n", await AwaitFile(name, "result", s => s.Split('\n').Length == 4));
        await _t.Manager.ShutdownAsync(name, T, CancellationToken.None);

        File.WriteAllText(Path.Combine(_t.TemplateRoot, "etc/from-template"), "updated in the template\n");
        await _t.Manager.StartAsync(App(name), CancellationToken.None);
        Assert.Equal("root-fresh\nprivate-kept\ntemplate-seen\n", await AwaitFile(name, "result", s => s.Split('\n').Length == 4));
        // Nothing the AppVM wrote reached the template.
        Assert.False(File.Exists(Path.Combine(_t.TemplateRoot, "etc/changed-in-root")));
    }

    [Fact]
    public async Task Memory_and_process_limits_hold_inside_and_the_sandbox_survives_them()
    {
        var name = _t.Name("caps");
        _t.Boot(name, """
            awk 'BEGIN { s = "x"; for (;;) s = s s }'; echo "awk $?" > /run/qubes/oom
            # A shell that cannot fork gives up: the fork loop runs in a subshell of its own.
            ( i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done ) 2> /run/qubes/fork.err; echo forked > /run/qubes/pids
            """);
        await _t.Manager.StartAsync(App(name, memoryMiB: 48) with { MaxPids = 16 }, CancellationToken.None);
        // The memory hog is killed by the OOM killer (SIGKILL: 128 + 9); the sandbox is not.
        Assert.Equal("awk 137\n", await AwaitFile(name, "oom"));
        Assert.True(_t.Cgroups.OomKills(name) >= 1);
        await AwaitFile(name, "pids");
        Assert.Contains("can't fork", File.ReadAllText(Path.Combine(_t.Run(name), "fork.err")));
        Assert.Contains(name, _t.Manager.RunningNames);
        await _t.Manager.ShutdownAsync(name, T, CancellationToken.None);
    }

    [Fact]
    public async Task A_disposable_leaves_nothing_behind()
    {
        var name = _t.Name("disp");
        await _t.Manager.StartAsync(new SandboxSpec(name, QubeClass.DispVM, TestStorage.Template, 64), CancellationToken.None);
        Assert.True(Directory.Exists(Path.Combine(_t.Storage, "qubes", name)));
        await _t.Manager.ShutdownAsync(name, T, CancellationToken.None);
        Assert.False(Directory.Exists(Path.Combine(_t.Storage, "qubes", name)), "a disposable's files survived it");
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(name, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_paused_sandbox_does_not_run_until_unpaused()
    {
        var name = _t.Name("pause");
        _t.Boot(name, "i=0; while true; do i=$((i+1)); echo $i > /run/qubes/count.tmp; mv /run/qubes/count.tmp /run/qubes/count; sleep 0.02; done");
        await _t.Manager.StartAsync(App(name), CancellationToken.None);
        await AwaitFile(name, "count");
        _t.Manager.Pause(name);
        Assert.True(_t.Manager.IsPaused(name));
        var frozen = File.ReadAllText(Path.Combine(_t.Run(name), "count"));
        await Task.Delay(300);
        Assert.Equal(frozen, File.ReadAllText(Path.Combine(_t.Run(name), "count")));
        _t.Manager.Unpause(name);
        await AwaitFile(name, "count", s => s != frozen && s.EndsWith('\n'));
        if (_t.Cgroups.Version == CgroupVersion.V1)
        {
            // The empty cgroup that keeps the v1 freezer active (so a thaw does not pay the kernel's code patching)
            // stays frozen after the thaw, and is no sandbox.
            Assert.Equal("FROZEN", File.ReadAllText(_t.Cgroups.FreezerKeeper).Trim());
            Assert.Empty(File.ReadAllText(Path.Combine(Path.GetDirectoryName(_t.Cgroups.FreezerKeeper)!, "cgroup.procs")));
            Assert.DoesNotContain("@freezer-keeper", _t.Cgroups.Existing());
        }
    }

    [Fact]
    public async Task Shutdown_kill_and_a_crash_are_reported_as_what_they_were()
    {
        var exits = new System.Collections.Concurrent.ConcurrentQueue<SandboxExited>();
        _t.Manager.SandboxStopped += exits.Enqueue;
        var (a, b, c) = (_t.Name("stop"), _t.Name("kill"), _t.Name("crash"));
        foreach (var n in new[] { a, b, c })
            await _t.Manager.StartAsync(App(n), CancellationToken.None);

        await _t.Manager.ShutdownAsync(a, T, CancellationToken.None);
        await _t.Manager.KillAsync(b, CancellationToken.None);
        // A crash: the sandbox's init dies without being asked.
        Process.Start("kill", ["-9", InitOf(c).ToString()])!.WaitForExit();

        var clock = Stopwatch.StartNew();
        while (exits.Count < 3 && clock.Elapsed < T)
            await Task.Delay(10);
        var byName = exits.ToDictionary(e => e.Name);
        Assert.Equal((true, "shutdown"), (byName[a].Requested, byName[a].Reason));
        Assert.Equal((true, "killed"), (byName[b].Requested, byName[b].Reason));
        Assert.False(byName[c].Requested, byName[c].Reason);
        Assert.Empty(_t.Manager.RunningNames);
        foreach (var n in new[] { a, b, c })
            Assert.False(Directory.Exists(_t.Cgroups.Directories(n)[0]), $"the cgroup of {n} was left behind");
    }

    [Fact]
    public async Task Sandboxes_outlive_their_manager_and_the_next_one_adopts_them_and_cleans_what_died()
    {
        var (alive, dead) = (_t.Name("alive"), _t.Name("dead"));
        _t.Boot(alive, "i=0; while true; do i=$((i+1)); echo $i > /run/qubes/count.tmp; mv /run/qubes/count.tmp /run/qubes/count; sleep 0.02; done");
        await _t.Manager.StartAsync(App(alive), CancellationToken.None);
        await _t.Manager.StartAsync(App(dead), CancellationToken.None);
        var init = InitOf(alive);

        // qubesd dies: nothing is stopped. While it is gone, one sandbox dies too.
        _t.Manager.LetGo();
        foreach (var pid in File.ReadAllLines(_t.Cgroups.PidsFile(dead)))
            Process.Start("kill", ["-9", pid])!.WaitForExit();
        var clock = Stopwatch.StartNew();
        while (File.ReadAllLines(_t.Cgroups.PidsFile(dead)).Length > 0 && clock.Elapsed < T)
            await Task.Delay(10);

        var next = new SandboxManager(_t.Storage, _t.Cgroups);
        Assert.Equal([alive], await next.AdoptAsync(CancellationToken.None));
        // Adopted as it was: the same init, still running.
        Assert.Contains(init.ToString(), File.ReadAllLines(_t.Cgroups.PidsFile(alive)));
        var before = File.ReadAllText(Path.Combine(_t.Run(alive), "count"));
        await AwaitFile(alive, "count", s => s != before && s.EndsWith('\n'));
        // The dead one's cgroup and overlay are gone.
        Assert.False(Directory.Exists(_t.Cgroups.Directories(dead)[0]));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains($"/{dead}/", StringComparison.Ordinal));

        // And the new manager controls the adopted one.
        next.Pause(alive);
        Assert.True(next.IsPaused(alive));
        var clock2 = Stopwatch.StartNew();
        await next.ShutdownAsync(alive, T, CancellationToken.None);
        Assert.True(clock2.Elapsed < TimeSpan.FromSeconds(2), $"the adopted sandbox took {clock2.Elapsed.TotalSeconds:0.0} s to shut down (killed after the timeout?)");
        Assert.Empty(next.RunningNames);
        Assert.False(Directory.Exists(_t.Cgroups.Directories(alive)[0]));
    }

    /// <summary>The host pid of a sandbox's init (the shell running /sbin/qubes-init).</summary>
    private int InitOf(string name) =>
        File.ReadAllLines(_t.Cgroups.PidsFile(name)).Select(int.Parse)
            .Single(pid => CommandLine(pid).Split('\0') is [var shell, "/sbin/qubes-init", ..] && shell.EndsWith("sh", StringComparison.Ordinal));

    /// <summary>A process's command line, empty when it ended meanwhile (the boot loops fork short-lived ones).</summary>
    private static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
