using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using QubesActors.Core.Model;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Guest;
using QubesActors.Sandbox.Launch;
using QubesActors.Sandbox.Storage;

namespace QubesActors.Sandbox;

/// <summary>What a sandbox is started with.</summary>
/// <param name="Vcpus">CPU time per CFS period, in whole CPUs (Qubes' vcpus); 0 = not limited.</param>
public sealed record SandboxSpec(string Name, QubeClass Class, string? Template, int MemoryMiB, int MaxPids = 512, string? NetNamespace = null,
    Guid Uuid = default, int Vcpus = 0);

/// <summary>A sandbox stopped: asked (shutdown, kill) or not (a crash: its init died).</summary>
public sealed record SandboxExited(string Name, bool Requested, string Reason);

public sealed class SandboxException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Starts, pauses, stops and watches sandboxes on this machine (bubblewrap, overlay mounts, cgroups): the machine side
/// of the sandbox backend. Sandboxes outlive this object and its process: <see cref="Adopt"/> takes over the ones a
/// previous qubesd left running (found by their cgroups), <see cref="CleanStale"/> removes what is left of dead ones.
/// Runs as root (mounts, cgroups); every external step is a process (mount, umount, bwrap), never a fork of the CLR.
/// Each running sandbox has a qrexec channel: a listening Unix socket <c>qrexec.sock</c> in its run directory
/// (<c>/run/qubes/qrexec.sock</c> inside), made before launch and again at adoption, closed at teardown; who serves
/// it subscribes to <see cref="ChannelOpened"/> (docs/qrexec.md). The guest bundle <paramref name="guestBin"/>
/// (default: the one built beside this assembly, when present) is bound into every sandbox at <c>/run/qubes/bin</c>.
/// </summary>
public sealed class SandboxManager(string storage, CgroupLayout cgroups, TimeSpan? readyTimeout = null, string? guestBin = null)
{
    /// <summary>The file name of a sandbox's qrexec channel in its run directory.</summary>
    public const string ChannelFile = "qrexec.sock";

    private readonly string? _guestBin = guestBin ?? (Directory.Exists(GuestBundle.BinDirectory) ? GuestBundle.BinDirectory : null);
    private readonly TimeSpan _readyTimeout = readyTimeout ?? TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<string, Running> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SandboxExited> _lastExit = new(StringComparer.Ordinal);
    // Cancelled when this manager lets go of its sandboxes without stopping them (qubesd exiting, or dying in a test).
    private readonly CancellationTokenSource _watching = new();

    private sealed class Running(SandboxVolumes volumes, Cgroup cgroup)
    {
        public SandboxVolumes Volumes { get; } = volumes;
        public Cgroup Cgroup { get; } = cgroup;
        public volatile bool StopRequested;
        public string StopReason = "";
        public Socket? Channel;
        public TaskCompletionSource<SandboxExited> Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Raised once per sandbox that stopped, asked or not (on a thread-pool thread).</summary>
    public event Action<SandboxExited>? SandboxStopped;

    /// <summary>
    /// Raised when a sandbox's qrexec channel is listening (at start, before the sandbox runs anything, and at
    /// adoption): whoever serves qrexec accepts on it. Every connection on it is from that sandbox.
    /// </summary>
    public event Action<string, Socket>? ChannelOpened;

    /// <summary>The qrexec channels of the running sandboxes (for a server that subscribes late).</summary>
    public IReadOnlyList<(string Name, Socket Channel)> Channels =>
        [.. _running.Where(r => r.Value.Channel is not null).Select(r => (r.Key, r.Value.Channel!))];

    public string Storage { get; } = storage;

    public IReadOnlyCollection<string> RunningNames => [.. _running.Keys];

    public static bool IsRoot => Native.GetEuid() == 0;

    public async Task StartAsync(SandboxSpec spec, CancellationToken ct)
    {
        if (_running.ContainsKey(spec.Name))
            throw new SandboxException($"sandbox {spec.Name} is already running");
        var volumes = SandboxVolumes.For(Storage, spec.Name, spec.Class, spec.Template);
        var cgroup = new Cgroup(cgroups, spec.Name);
        await PrepareAsync(volumes, ct).ConfigureAwait(false);
        try
        {
            cgroup.Create((long)spec.MemoryMiB * 1024 * 1024, spec.MaxPids, spec.Vcpus);
            // What a later qubesd needs to adopt it: the spec, beside its volumes.
            File.WriteAllText(SpecFile(spec.Name), System.Text.Json.JsonSerializer.Serialize(spec));
            var running = new Running(volumes, cgroup) { Channel = OpenChannel(volumes) };
            var command = new BwrapCommand(spec.Name, volumes.IsOverlay ? volumes.Root : volumes.Root, false, volumes.Private, volumes.Run,
                cgroups.ProcsFiles(spec.Name), spec.NetNamespace, _guestBin);
            var info = new ProcessStartInfo(command.Shell) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in command.Arguments())
                info.ArgumentList.Add(a);
            _running[spec.Name] = running;
            ChannelOpened?.Invoke(spec.Name, running.Channel);
            // Started by a thread inside the qube's network namespace: the launcher, bwrap and the qube inherit it,
            // without an `ip netns exec` process on the way.
            var process = (spec.NetNamespace is { } ns
                              ? Network.NetNamespaces.In(Path.Combine(Network.NetNamespaces.Directory, ns), () => Process.Start(info))
                              : Process.Start(info))
                          ?? throw new SandboxException($"sandbox {spec.Name}: bwrap did not start");
            _ = WatchAsync(spec.Name, running, process);
            await WaitReadyAsync(spec.Name, running, process, ct).ConfigureAwait(false);
        }
        catch
        {
            if (_running.TryRemove(spec.Name, out var failed))
                CloseChannel(failed, volumes);
            await cgroup.KillAllAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
            await TearDownAsync(volumes, cgroup).ConfigureAwait(false);
            throw;
        }
    }

    private async Task WaitReadyAsync(string name, Running running, Process process, CancellationToken ct)
    {
        var ready = Path.Combine(running.Volumes.Run, "ready");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(ready))
        {
            if (running.Exited.Task.IsCompleted)
                throw new SandboxException($"sandbox {name} exited before it was ready: {(await running.Exited.Task.ConfigureAwait(false)).Reason}");
            if (clock.Elapsed > _readyTimeout)
                throw new SandboxException($"sandbox {name} not ready after {_readyTimeout.TotalSeconds:0} s");
            // A stat a millisecond while it boots (~20 ms): the start waits on this file, not on a slower poll.
            await Task.Delay(1, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The sandbox's end: its init exited. Teardown, then the report (a crash unless a stop was asked).</summary>
    private async Task WatchAsync(string name, Running running, Process process)
    {
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync(_watching.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await EndAsync(name, running, running.StopRequested ? running.StopReason : $"exited with status {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}")
            .ConfigureAwait(false);
        process.Dispose();
    }

    private async Task EndAsync(string name, Running running, string reason)
    {
        CloseChannel(running, running.Volumes);
        // Whatever the init left behind in the cgroup goes with it.
        try
        {
            await running.Cgroup.KillAllAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
            await TearDownAsync(running.Volumes, running.Cgroup).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SandboxException or TimeoutException or UnauthorizedAccessException)
        {
            reason += $" (cleanup: {e.Message})";
        }
        _running.TryRemove(name, out _);
        var exited = new SandboxExited(name, running.StopRequested, reason);
        _lastExit[name] = exited;
        running.Exited.TrySetResult(exited);
        SandboxStopped?.Invoke(exited);
    }

    /// <summary>Graceful: asks the init to end (its control FIFO); after <paramref name="timeout"/>, kills.</summary>
    public async Task ShutdownAsync(string name, TimeSpan timeout, CancellationToken ct)
    {
        var running = Get(name);
        running.StopRequested = true;
        running.StopReason = "shutdown";
        if (running.Cgroup.IsFrozen)
            running.Cgroup.Thaw();
        if (Native.TryWriteFifo(Path.Combine(running.Volumes.Run, "control"), "shutdown\n"))
        {
            var done = await Task.WhenAny(running.Exited.Task, Task.Delay(timeout, ct)).ConfigureAwait(false);
            if (done == running.Exited.Task)
                return;
            // The caller's own timeout (qubesd's shutdown_timeout) decides what follows: it kills.
            ct.ThrowIfCancellationRequested();
        }
        running.StopReason = "shutdown (killed after the timeout)";
        await running.Cgroup.KillAllAsync(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        await running.Exited.Task.WaitAsync(TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
    }

    public async Task KillAsync(string name, CancellationToken ct)
    {
        var running = Get(name);
        running.StopRequested = true;
        running.StopReason = "killed";
        await running.Cgroup.KillAllAsync(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        await running.Exited.Task.WaitAsync(TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
    }

    public void Pause(string name) => Get(name).Cgroup.Freeze();

    public void Unpause(string name) => Get(name).Cgroup.Thaw();

    public bool IsPaused(string name) => Get(name).Cgroup.IsFrozen;

    /// <summary>The cgroup.procs files a process writes its pid into to join a running sandbox's cgroup(s).</summary>
    public IReadOnlyList<string> CgroupProcsFilesOf(string name)
    {
        Get(name);
        return cgroups.ProcsFiles(name);
    }

    /// <summary>
    /// The host pid of a running sandbox's init (its pid 1): the handle into its namespaces (<c>/proc/PID/root</c>,
    /// <c>nsenter -t PID</c>) for whoever must reach inside it (qrexec services, device nodes).
    /// </summary>
    public int InitPidOf(string name) =>
        Get(name).Cgroup.Pids().FirstOrDefault(IsInit) is var pid and not 0 ? pid
        : throw new SandboxException($"sandbox {name} has no init (it is starting or stopping)");

    /// <summary>The spec a running sandbox was started with (from its file, so adopted ones have it too).</summary>
    public SandboxSpec? SpecOf(string name) =>
        File.Exists(SpecFile(name)) ? System.Text.Json.JsonSerializer.Deserialize<SandboxSpec>(File.ReadAllText(SpecFile(name))) : null;

    private Running Get(string name) =>
        _running.TryGetValue(name, out var running) ? running
        : throw new SandboxException($"sandbox {name} is not running{(_lastExit.TryGetValue(name, out var last) ? $" (it stopped: {last.Reason})" : "")}");

    private string SpecFile(string name) => Path.Combine(Storage, "qubes", name, "sandbox.json");

    /// <summary>
    /// Takes over the sandboxes a previous qubesd left running (their cgroups have processes and their spec is on
    /// disk): they are watched from now on, none is restarted. Returns their names. Sandboxes whose processes are gone
    /// are cleaned (<see cref="CleanStale"/>).
    /// </summary>
    public async Task<IReadOnlyList<string>> AdoptAsync(CancellationToken ct)
    {
        await CleanStaleAsync(ct).ConfigureAwait(false);
        var adopted = new List<string>();
        foreach (var name in cgroups.Existing())
        {
            var cgroup = new Cgroup(cgroups, name);
            if (_running.ContainsKey(name) || cgroup.Pids().Count == 0 || !File.Exists(SpecFile(name)))
                continue;
            var spec = System.Text.Json.JsonSerializer.Deserialize<SandboxSpec>(await File.ReadAllTextAsync(SpecFile(name), ct).ConfigureAwait(false))!;
            var volumes = SandboxVolumes.For(Storage, name, spec.Class, spec.Template);
            var running = new Running(volumes, cgroup);
            if (!_running.TryAdd(name, running))
                continue;
            // The previous qubesd's listening socket died with it: a new one at the same path (the sandbox sees the
            // run directory, not the socket's inode, so it reaches the new one).
            try
            {
                running.Channel = OpenChannel(volumes);
                ChannelOpened?.Invoke(name, running.Channel);
            }
            catch (SandboxException)
            {
                // Adopted without qrexec rather than not at all: the sandbox runs on and is still controlled.
            }
            _ = PollAsync(name, running);
            adopted.Add(name);
        }
        return adopted;
    }

    /// <summary>
    /// An adopted sandbox is not our child: it has ended when its init has (what is left in its cgroup then goes
    /// with it, as for a sandbox we started), or, without a recognisable init, when its cgroup is empty.
    /// </summary>
    private async Task PollAsync(string name, Running running)
    {
        var init = running.Cgroup.Pids().FirstOrDefault(IsInit);
        try
        {
            while (init != 0 ? Directory.Exists($"/proc/{init}") : running.Cgroup.Pids().Count > 0)
                await Task.Delay(100, _watching.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await EndAsync(name, running, running.StopRequested ? running.StopReason : "its processes ended (adopted sandbox)").ConfigureAwait(false);
    }

    /// <summary>The sandbox's init: the shell running <see cref="BwrapCommand.Init"/> (bubblewrap's own command line names it too).</summary>
    private static bool IsInit(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0') is [var shell, var script, ..]
                   && shell.EndsWith("sh", StringComparison.Ordinal) && script == new BwrapCommand("", "", false, "", "", [], null).Init;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Removes what dead sandboxes left: cgroups without processes, their mounts and volatile layers, a disposable's
    /// whole directory. A running sandbox is never touched.
    /// </summary>
    public async Task CleanStaleAsync(CancellationToken ct)
    {
        foreach (var name in cgroups.Existing())
        {
            var cgroup = new Cgroup(cgroups, name);
            if (_running.ContainsKey(name) || cgroup.Pids().Count > 0)
                continue;
            if (File.Exists(SpecFile(name)))
            {
                var spec = System.Text.Json.JsonSerializer.Deserialize<SandboxSpec>(await File.ReadAllTextAsync(SpecFile(name), ct).ConfigureAwait(false))!;
                await TearDownAsync(SandboxVolumes.For(Storage, name, spec.Class, spec.Template), cgroup).ConfigureAwait(false);
            }
            else
                cgroup.Remove();
        }
    }

    /// <summary>Stops watching without stopping anything: the sandboxes run on, for the next qubesd to adopt.</summary>
    public void LetGo()
    {
        _watching.Cancel();
        // The channels stop being served (their files stay for the next qubesd, which makes new ones).
        foreach (var running in _running.Values)
            running.Channel?.Dispose();
        _running.Clear();
    }

    // ------------------------------------------------------------------ qrexec channel

    private static Socket OpenChannel(SandboxVolumes v)
    {
        var path = Path.Combine(v.Run, ChannelFile);
        // Made beside the run directory, where the qube cannot reach, and renamed into it: the run directory is the
        // qube's to write (a running one, at adoption), and a chmod there by path could follow a symlink it put in
        // its place. rename(2) replaces whatever is at the path without following it.
        var staging = Path.Combine(v.QubeDir, ChannelFile + ".new");
        File.Delete(staging);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(staging));
            // Only root connects; inside the sandbox that is the qube (uid 0, no capabilities).
            File.SetUnixFileMode(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(64);
            File.Move(staging, path, overwrite: true);
            return socket;
        }
        catch (Exception e) when (e is SocketException or IOException or ArgumentException)
        {
            // ArgumentException: a socket path over the 108 bytes of sun_path (a very long storage path).
            socket.Dispose();
            throw new SandboxException($"cannot make the qrexec channel of {v.Name} ({path}): {e.Message}", e);
        }
    }

    private static void CloseChannel(Running running, SandboxVolumes v)
    {
        running.Channel?.Dispose();
        running.Channel = null;
        try
        {
            File.Delete(Path.Combine(v.Run, ChannelFile));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    // ------------------------------------------------------------------ storage

    private async Task PrepareAsync(SandboxVolumes v, CancellationToken ct)
    {
        if (!Directory.Exists(v.IsOverlay ? v.Lower! : v.Root))
            throw new SandboxException($"no root file system for {v.Name}: {(v.IsOverlay ? v.Lower : v.Root)} does not exist");
        Directory.CreateDirectory(v.QubeDir);
        // Left over from a sandbox that was not torn down (a crash of qubesd): gone before anything is mounted again.
        await UnmountAsync(v.Root).ConfigureAwait(false);
        if (v.Volatile)
        {
            await UnmountAsync(Path.GetDirectoryName(v.Upper!)!).ConfigureAwait(false);
            Directory.CreateDirectory(Path.GetDirectoryName(v.Upper!)!);
            MountOrThrow("qubes-disposable", Path.GetDirectoryName(v.Upper!)!, "tmpfs", "mode=0700,size=256m");
        }
        else if (v.IsOverlay)
        {
            // The AppVM's root changes of its previous run are discarded: a fresh upper layer every start.
            var volatileDir = Path.GetDirectoryName(v.Upper!)!;
            if (Directory.Exists(volatileDir))
                Directory.Delete(volatileDir, recursive: true);
        }
        if (v.IsOverlay)
        {
            Directory.CreateDirectory(v.Upper!);
            Directory.CreateDirectory(v.Work!);
            Directory.CreateDirectory(v.Root);
            MountOrThrow("qubes-root", v.Root, "overlay", v.OverlayOptions);
        }
        Directory.CreateDirectory(v.Private);
        Directory.CreateDirectory(Path.Combine(v.Private, "home"));
        if (Directory.Exists(v.Run))
            Directory.Delete(v.Run, recursive: true);
        Directory.CreateDirectory(v.Run);
        if (Native.MkFifo(Path.Combine(v.Run, "control"), Convert.ToUInt32("600", 8)) != 0)
            throw new SandboxException($"cannot create the control FIFO of {v.Name}");
    }

    private async Task TearDownAsync(SandboxVolumes v, Cgroup cgroup)
    {
        if (v.IsOverlay)
            await UnmountAsync(v.Root).ConfigureAwait(false);
        if (v.Volatile)
            await UnmountAsync(Path.GetDirectoryName(v.Upper!)!).ConfigureAwait(false);
        if (v.IsOverlay && !v.Volatile)
        {
            // The AppVM's root changes are discarded at shutdown.
            var volatileDir = Path.GetDirectoryName(v.Upper!)!;
            if (Directory.Exists(volatileDir))
                Directory.Delete(volatileDir, recursive: true);
        }
        if (v.Class == QubeClass.DispVM && Directory.Exists(v.QubeDir))
            Directory.Delete(v.QubeDir, recursive: true);
        cgroup.Remove();
    }

    /// <summary>mount(2) directly: a mount(8) process per start costs more than the mount (isolation-backends.md: spawns are the cost here).</summary>
    private static void MountOrThrow(string source, string target, string type, string options)
    {
        if (Native.Mount(source, target, type, 0, options) != 0)
            throw new SandboxException($"mount {type} on {target} ({options}): {new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError()).Message}");
    }

    private static Task UnmountAsync(string path)
    {
        // Lazily (MNT_DETACH), and repeatedly: a path may carry stacked mounts after a crash. No mount there is
        // EINVAL (ENOENT when the path is gone): asking the kernel costs less than reading mountinfo, which is long
        // with many sandboxes running, and this runs at every start and stop.
        for (var i = 0; i < 4; i++)
        {
            if (Native.Umount2(path, Native.MntDetach) == 0)
                continue;
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Einval or Enoent)
                break;
            throw new SandboxException($"umount {path}: {new System.ComponentModel.Win32Exception(errno).Message}");
        }
        return Task.CompletedTask;
    }

    private const int Enoent = 2, Einval = 22;

    internal static async Task RunAsync(string file, IReadOnlyList<string> args, CancellationToken ct)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new SandboxException($"{file} did not start");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        _ = process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        if (process.ExitCode != 0)
            throw new SandboxException($"{file} {string.Join(' ', args)}: exit {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
    }
}
