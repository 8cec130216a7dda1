using System.Globalization;

namespace QubesActors.Sandbox.Cgroups;

/// <summary>Which cgroup hierarchy the machine has: v1 (one mount per controller, these CI machines) or v2 (unified, most desktops).</summary>
public enum CgroupVersion
{
    V1,
    V2,
}

/// <summary>
/// Where a sandbox's cgroup lives and how its knobs are spelt on each hierarchy. Pure: the paths and the values,
/// from the cgroup root and the version; <see cref="Cgroup"/> writes them.
/// </summary>
public sealed record CgroupLayout(CgroupVersion Version, string Root, string Parent)
{
    /// <summary>The controllers a sandbox uses: freezer (pause), memory (memory/maxmem), pids (fork bombs), cpu (vcpus).</summary>
    public static readonly string[] V1Controllers = ["freezer", "memory", "pids", "cpu"];

    /// <summary>The CFS period; a sandbox with N vcpus may use N periods of CPU time per period.</summary>
    public const int CpuPeriodMicroseconds = 100_000;

    /// <summary>v2 when <c>cgroup.controllers</c> sits at the root (unified), v1 when the controllers are mounted one by one.</summary>
    public static CgroupLayout Detect(string root = "/sys/fs/cgroup", string parent = "qubes-actors") =>
        File.Exists(Path.Combine(root, "cgroup.controllers")) ? new(CgroupVersion.V2, root, parent) : new(CgroupVersion.V1, root, parent);

    /// <summary>The directories of one sandbox's cgroup: three on v1 (one per controller), one on v2.</summary>
    public IReadOnlyList<string> Directories(string sandbox) => Version == CgroupVersion.V1
        ? [.. V1Controllers.Select(c => Path.Combine(Root, c, Parent, sandbox))]
        : [Path.Combine(Root, Parent, sandbox)];

    /// <summary>The files a process id is written to so that it, and every process it starts, is accounted.</summary>
    public IReadOnlyList<string> ProcsFiles(string sandbox) => [.. Directories(sandbox).Select(d => Path.Combine(d, "cgroup.procs"))];

    public string PidsFile(string sandbox) => Path.Combine(Version == CgroupVersion.V1 ? Path.Combine(Root, "pids", Parent, sandbox) : Path.Combine(Root, Parent, sandbox), "cgroup.procs");

    /// <summary>(file, value) pairs that set the memory limit, the process limit and, with <paramref name="vcpus"/> &gt; 0, the CPU quota.</summary>
    public IReadOnlyList<(string File, string Value)> Limits(string sandbox, long memoryBytes, int maxPids, int vcpus = 0)
    {
        var memory = memoryBytes.ToString(CultureInfo.InvariantCulture);
        var pids = maxPids.ToString(CultureInfo.InvariantCulture);
        var quota = ((long)vcpus * CpuPeriodMicroseconds).ToString(CultureInfo.InvariantCulture);
        var period = CpuPeriodMicroseconds.ToString(CultureInfo.InvariantCulture);
        // Swap counts against the same limit (memsw after memory on v1; no swap on v2): a qube cannot outgrow its
        // memory by swapping. The swap files exist only where swap accounting is on; Cgroup skips missing ones.
        if (Version == CgroupVersion.V1)
            return
            [
                (Path.Combine(Root, "memory", Parent, sandbox, "memory.limit_in_bytes"), memory),
                (Path.Combine(Root, "memory", Parent, sandbox, "memory.memsw.limit_in_bytes"), memory),
                (Path.Combine(Root, "pids", Parent, sandbox, "pids.max"), pids),
                .. vcpus > 0
                    ? new[] { (Path.Combine(Root, "cpu", Parent, sandbox, "cpu.cfs_period_us"), period), (Path.Combine(Root, "cpu", Parent, sandbox, "cpu.cfs_quota_us"), quota) }
                    : [],
            ];
        var dir = Path.Combine(Root, Parent, sandbox);
        return
        [
            (Path.Combine(dir, "memory.max"), memory), (Path.Combine(dir, "memory.swap.max"), "0"), (Path.Combine(dir, "pids.max"), pids),
            .. vcpus > 0 ? new[] { (Path.Combine(dir, "cpu.max"), $"{quota} {period}") } : [],
        ];
    }

    /// <summary>The freezer's file and the values that freeze and thaw it.</summary>
    public (string File, string Freeze, string Thaw) Freezer(string sandbox) => Version == CgroupVersion.V1
        ? (Path.Combine(Root, "freezer", Parent, sandbox, "freezer.state"), "FROZEN", "THAWED")
        : (Path.Combine(Root, Parent, sandbox, "cgroup.freeze"), "1", "0");

    /// <summary>
    /// v1: the freezer.state of an empty cgroup kept frozen so that the kernel's freezer stays active (see
    /// <c>Cgroup.KeepFreezerActive</c>). Its name cannot be a qube's ('@' is not allowed in one), and it lives only in
    /// the freezer hierarchy, so <see cref="Existing"/> never lists it as a sandbox.
    /// </summary>
    public string FreezerKeeper => Path.Combine(Root, "freezer", Parent, "@freezer-keeper", "freezer.state");

    /// <summary>How many times the kernel's OOM killer killed a process of this sandbox.</summary>
    public long OomKills(string sandbox)
    {
        var file = Version == CgroupVersion.V1 ? Path.Combine(Root, "memory", Parent, sandbox, "memory.oom_control") : Path.Combine(Root, Parent, sandbox, "memory.events");
        return File.Exists(file)
            ? File.ReadLines(file).Select(l => l.Split(' ')).Where(f => f is ["oom_kill", _]).Select(f => long.Parse(f[1], CultureInfo.InvariantCulture)).FirstOrDefault()
            : 0;
    }

    /// <summary>The sandboxes that have a cgroup (a daemon that restarts finds its sandboxes here).</summary>
    public IReadOnlyList<string> Existing()
    {
        var dir = Version == CgroupVersion.V1 ? Path.Combine(Root, "pids", Parent) : Path.Combine(Root, Parent);
        return Directory.Exists(dir) ? [.. Directory.EnumerateDirectories(dir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)] : [];
    }
}

/// <summary>
/// One sandbox's cgroup on the machine: create, limit, freeze, kill every process in it, remove. v1 needs a thaw
/// before a kill (a SIGKILL to a frozen v1 cgroup is not delivered until thaw; isolation-backends.md §2a).
/// </summary>
public sealed class Cgroup(CgroupLayout layout, string sandbox)
{
    public string Sandbox { get; } = sandbox;

    public void Create(long memoryBytes, int maxPids, int vcpus = 0)
    {
        if (layout.Version == CgroupVersion.V2)
        {
            // Controllers must be enabled on every level above a cgroup that uses them.
            var parent = Path.Combine(layout.Root, layout.Parent);
            Directory.CreateDirectory(parent);
            TryWrite(Path.Combine(layout.Root, "cgroup.subtree_control"), "+memory +pids +cpu");
            TryWrite(Path.Combine(parent, "cgroup.subtree_control"), "+memory +pids +cpu");
        }
        foreach (var dir in layout.Directories(Sandbox))
            Directory.CreateDirectory(dir);
        foreach (var (file, value) in layout.Limits(Sandbox, memoryBytes, maxPids, vcpus))
            if (File.Exists(file) || !file.Contains("swap", StringComparison.Ordinal) && !file.Contains("memsw", StringComparison.Ordinal))
                File.WriteAllText(file, value);
    }

    public IReadOnlyList<int> Pids()
    {
        var file = layout.PidsFile(Sandbox);
        try
        {
            return [.. File.ReadAllLines(file).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
        }
        catch (IOException)
        {
            // Not there, or removed while read (ENODEV): the sandbox's end raced this look; it has no processes.
            return [];
        }
    }

    public bool Exists => Directory.Exists(layout.Directories(Sandbox)[^1]);

    /// <summary>Freezes and returns once every process is frozen (v1 passes through FREEZING; v2 reports it in cgroup.events).</summary>
    public void Freeze()
    {
        KeepFreezerActive(layout);
        WriteFreezer(freeze: true);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!IsFrozen)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"sandbox {Sandbox}: its processes did not freeze within 5 s");
            Thread.Sleep(1);
        }
    }

    public void Thaw() => WriteFreezer(freeze: false);

    /// <summary>Every process frozen (not merely asked to freeze).</summary>
    public bool IsFrozen
    {
        get
        {
            if (layout.Version == CgroupVersion.V2)
            {
                var events = Path.Combine(layout.Directories(Sandbox)[0], "cgroup.events");
                return File.Exists(events) && File.ReadLines(events).Contains("frozen 1");
            }
            var (file, frozen, _) = layout.Freezer(Sandbox);
            return File.Exists(file) && File.ReadAllText(file).Trim() == frozen;
        }
    }

    /// <summary>
    /// On v1, one empty cgroup kept frozen beside the sandboxes (<see cref="CgroupLayout.FreezerKeeper"/>). The v1
    /// freezer switches a kernel static key when the first cgroup starts freezing and when the last one thaws, and
    /// that code patching costs 1.5–2 ms on this VM, over 10 ms under load: a preloaded disposable's thaw, the only
    /// frozen cgroup, paid it on its call's path. With one cgroup always frozen the key stays on, and a thaw is a
    /// write of 0.1 ms. An empty frozen cgroup holds nothing; it is made once per hierarchy and left in place.
    /// </summary>
    private static void KeepFreezerActive(CgroupLayout layout)
    {
        if (layout.Version != CgroupVersion.V1 || !KeptActive.TryAdd(layout, 0))
            return;
        var keeper = layout.FreezerKeeper;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(keeper)!);
            File.WriteAllText(keeper, "FROZEN");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only slower freezes and thaws without it: try again next time.
            KeptActive.TryRemove(layout, out _);
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<CgroupLayout, byte> KeptActive = new();

    private void WriteFreezer(bool freeze)
    {
        var (file, frozen, thawed) = layout.Freezer(Sandbox);
        File.WriteAllText(file, freeze ? frozen : thawed);
    }

    /// <summary>SIGKILL to every process until the cgroup is empty (processes forked meanwhile are caught next round).</summary>
    public async Task KillAllAsync(TimeSpan timeout, CancellationToken ct)
    {
        if (!Exists)
            return;
        Thaw();
        var deadline = DateTime.UtcNow + timeout;
        for (var round = 0; Pids() is { Count: > 0 } pids; round++)
        {
            foreach (var pid in pids)
                _ = Native.Kill(pid, Native.SigKill);
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"sandbox {Sandbox}: {pids.Count} process(es) still alive after SIGKILL");
            // Killed processes leave within a millisecond or two; a disposable's destroy is on its call's path.
            await Task.Delay(round < 10 ? 1 : 5, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Removes the (empty) cgroup directories.</summary>
    public void Remove()
    {
        foreach (var dir in layout.Directories(Sandbox))
            if (Directory.Exists(dir))
                Directory.Delete(dir);
    }

    private static void TryWrite(string file, string value)
    {
        try
        {
            File.WriteAllText(file, value);
        }
        catch (IOException)
        {
            // Already enabled, or not delegable here: Create fails later on the limit file if it matters.
        }
    }
}
