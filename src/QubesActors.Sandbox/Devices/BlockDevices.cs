using System.Diagnostics;
using QubesActors.Runtime.Backend;

namespace QubesActors.Sandbox.Devices;

/// <summary>Where the block layer finds things on this machine (defaults: the real ones).</summary>
public sealed record BlockDevicesSettings(
    string SysBlock = "/sys/block",
    string DevDirectory = "/dev",
    string Mount = "mount",
    long MaxImageBytes = 1L << 40);

/// <summary>One attached block device: what, where (the frontend's node), and the loop device behind it.</summary>
public sealed record BlockAttachment(string Frontend, int FrontendInitPid, BackendDevice Device, string FrontendDev, bool ReadOnly,
    string Loop, bool OwnsLoop, string FrontendMountNamespace);

/// <summary>
/// Real block devices (docs/sandbox-devices.md). dom0's devices are the host's bound loop devices; a backend qube
/// exposes image files in its <c>/run/qubes/block/</c>, which become loop devices qubesd owns when attached. Attach
/// makes <c>/dev/xvdi</c>.. in the frontend sandbox (a device node bind-mounted in its mount namespace, since the
/// sandbox's own <c>/dev</c> is a nodev tmpfs); detach removes it. Everything a qube controls is untrusted: names,
/// file types, symlinks, sizes. Thread-safe; every change runs under one lock.
/// </summary>
public sealed class BlockDevices(Func<string, string> runDirectoryOf, BlockDevicesSettings? settings = null)
{
    public const string Dom0 = "dom0";

    /// <summary>The directory, inside a backend qube's <c>/run/qubes</c>, whose image files it exposes.</summary>
    public const string ImageDirectory = "block";

    private readonly BlockDevicesSettings _settings = settings ?? new BlockDevicesSettings();
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly List<BlockAttachment> _attachments = [];
    // The last listing of each watched backend: the base of the appeared/vanished diff.
    private readonly Dictionary<string, IReadOnlyList<BackendDevice>> _known = new(StringComparer.Ordinal) { [Dom0] = [] };

    /// <summary>A device appeared on or vanished from a backend (raised on the polling or calling thread).</summary>
    public event Action<BackendEvent>? Changed;

    /// <summary>An attachment ended without a detach being asked: its backend stopped or its device vanished.</summary>
    public event Action<BlockAttachment, string>? AttachmentLost;

    public IReadOnlyList<BlockAttachment> Attachments
    {
        get
        {
            lock (_attachments)
                return [.. _attachments];
        }
    }

    // ------------------------------------------------------------------ listing

    /// <summary>The block devices <paramref name="backend"/> exposes now.</summary>
    public Task<IReadOnlyList<BackendDevice>> ListAsync(string backend, CancellationToken ct) =>
        Task.Run(() => backend == Dom0 ? ListDom0() : ListQube(backend), ct);

    private IReadOnlyList<BackendDevice> ListDom0()
    {
        var owned = Attachments.Where(a => a.OwnsLoop).Select(a => a.Loop).ToHashSet(StringComparer.Ordinal);
        return [.. LoopSysfs.Read(_settings.SysBlock).Where(l => !owned.Contains(l.Name)).Select(Dom0Device)];
    }

    private static BackendDevice Dom0Device(LoopDevice loop)
    {
        // The identity of the backing file; a deleted or unreachable one has none ("unknown", as Qubes says).
        var stat = DeviceNative.Statx(DeviceNative.AtFdCwd, loop.BackingFile, 0);
        var id = stat is { } s ? BlockRules.FileIdentity(s.Device, s.Inode) : "unknown";
        return new BackendDevice(BlockRules.DeviceClass, Dom0, loop.Name, id, BlockRules.Printable(loop.BackingFile), Interfaces: BlockRules.Interfaces);
    }

    private IReadOnlyList<BackendDevice> ListQube(string backend)
    {
        var devices = new List<BackendDevice>();
        var dir = OpenImageDirectory(backend);
        if (dir < 0)
            return devices;
        try
        {
            // The directory's entries through its descriptor (the magic link is the opened directory, not a path).
            foreach (var entry in Directory.EnumerateFileSystemEntries($"/proc/self/fd/{dir}"))
            {
                var untrustedName = Path.GetFileName(entry);
                if (!BlockRules.IsValidPort(untrustedName))
                    continue;
                if (DeviceNative.Statx(dir, untrustedName, DeviceNative.AtSymlinkNoFollow) is not { } stat
                    || BlockRules.RefuseImage(stat.IsRegular, stat.Size, _settings.MaxImageBytes) is not null)
                    continue;
                devices.Add(QubeDevice(backend, untrustedName, stat));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The qube removed its directory while it was read: it exposes nothing now.
        }
        finally
        {
            DeviceNative.Close(dir);
        }
        return [.. devices.OrderBy(d => d.Port, StringComparer.Ordinal)];
    }

    private static BackendDevice QubeDevice(string backend, string port, DeviceNative.Stat stat) =>
        new(BlockRules.DeviceClass, backend, port, BlockRules.FileIdentity(stat.Device, stat.Inode),
            $"{port} ({BlockRules.Size(stat.Size)}{(IsReadOnlyImage(stat) ? ", read-only" : "")})", Interfaces: BlockRules.Interfaces);

    /// <summary>A qube exposes an image read-only by taking away its write bits (chmod a-w: no capability needed).</summary>
    private static bool IsReadOnlyImage(DeviceNative.Stat stat) => (stat.Mode & Convert.ToUInt32("222", 8)) == 0;

    /// <summary>The backend qube's image directory, opened without following a symlink the qube may have put there; -1 when absent.</summary>
    private int OpenImageDirectory(string backend)
    {
        var run = DeviceNative.OpenAt(DeviceNative.AtFdCwd, runDirectoryOf(backend), DeviceNative.ODirectory | DeviceNative.OCloExec);
        if (run < 0)
            return -1;
        try
        {
            return DeviceNative.OpenAt(run, ImageDirectory, DeviceNative.ODirectory | DeviceNative.ONoFollow | DeviceNative.OCloExec);
        }
        finally
        {
            DeviceNative.Close(run);
        }
    }

    // ------------------------------------------------------------------ attach / detach

    /// <summary>
    /// Attaches <paramref name="device"/> to the running sandbox <paramref name="frontend"/> whose init has host pid
    /// <paramref name="frontendInitPid"/>: a node <c>/dev/xvdi</c>.. appears inside. Read-only attach gives a
    /// read-only loop device (writes fail in the kernel, whatever the node's mode).
    /// </summary>
    public async Task<BlockAttachment> AttachAsync(string frontend, int frontendInitPid, BackendDevice device, BlockAttachOptions options, CancellationToken ct)
    {
        if (device.DeviceClass != BlockRules.DeviceClass)
            throw new BlockDeviceException("ProtocolError", $"not a block device: {device.DeviceClass}");
        if (device.Backend == frontend)
            throw new BlockDeviceException("QubesException", "a qube cannot attach its own device");
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Attachments.FirstOrDefault(a => a.Device.Backend == device.Backend && a.Device.Port == device.Port) is { } already)
                throw new BlockDeviceException("DeviceAlreadyAttached", $"device {device.Address} is already attached to {already.Frontend}");
            var ns = MountNamespaceOf(frontendInitPid)
                     ?? throw new BlockDeviceException("QubesVMNotRunningError", "VM not running, cannot attach device, do you mean `assign`?");
            var name = BlockRules.PickFrontendName(Attachments.Where(a => a.Frontend == frontend).Select(a => a.FrontendDev), options.FrontendDev);
            var (loop, owns, readOnly, resolved) = device.Backend == Dom0 ? BindDom0(device, options) : BindImage(device, options);
            try
            {
                var info = LoopSysfs.Get(loop, _settings.SysBlock) ?? throw new BlockDeviceException("QubesException", $"{loop} vanished while attaching");
                await MakeNodeAsync(frontendInitPid, name, info, ct).ConfigureAwait(false);
            }
            catch
            {
                if (owns)
                    LoopNative.Release(loop, _settings.DevDirectory);
                throw;
            }
            var attachment = new BlockAttachment(frontend, frontendInitPid, resolved, name, readOnly, loop, owns, ns);
            lock (_attachments)
                _attachments.Add(attachment);
            return attachment;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>dom0's loop device itself, or, for a read-only attach of a writable one, a read-only loop over it that qubesd owns.</summary>
    private (string Loop, bool Owns, bool ReadOnly, BackendDevice Device) BindDom0(BackendDevice device, BlockAttachOptions options)
    {
        if (!BlockRules.IsLoopName(device.Port) || LoopSysfs.Get(device.Port, _settings.SysBlock) is not { } loop
            || (device.DeviceId is not ("" or "*") && Dom0Device(loop).DeviceId != device.DeviceId)
            || Attachments.Any(a => a.OwnsLoop && a.Loop == loop.Name))
            throw new BlockDeviceException("ProtocolError", $"no such device: {BlockRules.Printable(device.Address)}");
        var listed = Dom0Device(loop);
        if (!options.ReadOnly || loop.ReadOnly)
            return (loop.Name, false, loop.ReadOnly, listed);
        var fd = DeviceNative.OpenAt(DeviceNative.AtFdCwd, Path.Combine(_settings.DevDirectory, loop.Name), DeviceNative.ORdOnly | DeviceNative.OCloExec);
        if (fd < 0)
            throw new BlockDeviceException("QubesException", $"cannot open {loop.Name}: {DeviceNative.LastError()}");
        try
        {
            return (LoopNative.Configure(fd, readOnly: true, _settings.DevDirectory), true, true, listed);
        }
        finally
        {
            DeviceNative.Close(fd);
        }
    }

    /// <summary>
    /// A backend qube's image: opened without following symlinks and without blocking on a FIFO, checked through the
    /// open descriptor (regular file, size, the identity the caller listed), and that descriptor becomes the loop device.
    /// </summary>
    private (string Loop, bool Owns, bool ReadOnly, BackendDevice Device) BindImage(BackendDevice device, BlockAttachOptions options)
    {
        var untrustedPort = device.Port;
        if (!BlockRules.IsValidPort(untrustedPort))
            throw new BlockDeviceException("ProtocolError", $"invalid block device port '{BlockRules.Printable(untrustedPort)}'");
        var dir = OpenImageDirectory(device.Backend);
        if (dir < 0)
            throw new BlockDeviceException("ProtocolError", $"no such device: {device.Address}");
        int fd;
        try
        {
            fd = DeviceNative.OpenAt(dir, untrustedPort, 2 /* O_RDWR */ | DeviceNative.ONoFollow | DeviceNative.ONonBlock | DeviceNative.OCloExec);
        }
        finally
        {
            DeviceNative.Close(dir);
        }
        if (fd < 0)
            throw new BlockDeviceException("ProtocolError", $"no such device: {device.Address} ({DeviceNative.LastError()})");
        try
        {
            var stat = DeviceNative.Statx(fd, "", DeviceNative.AtEmptyPath) ?? throw new BlockDeviceException("QubesException", $"cannot inspect {device.Address}");
            if (BlockRules.RefuseImage(stat.IsRegular, stat.Size, _settings.MaxImageBytes) is { } why)
                throw new BlockDeviceException("ProtocolError", $"{device.Address} cannot be a block device: {why}");
            if (device.DeviceId is not ("" or "*") && BlockRules.FileIdentity(stat.Device, stat.Inode) != device.DeviceId)
                throw new BlockDeviceException("ProtocolError", $"no such device: {device.Address} (it was replaced)");
            var readOnly = options.ReadOnly || IsReadOnlyImage(stat);
            return (LoopNative.Configure(fd, readOnly, _settings.DevDirectory), true, readOnly, QubeDevice(device.Backend, untrustedPort, stat));
        }
        finally
        {
            DeviceNative.Close(fd);
        }
    }

    /// <summary>
    /// The node in the frontend: made in its <c>/dev</c> (through <c>/proc/PID/root</c>, relative to the opened
    /// directory), then bound onto itself inside its mount namespace without nodev (<c>mount -N</c>: the mount program
    /// is the host's, only the mount(2) call happens in the sandbox's namespace), since bubblewrap's /dev is nodev.
    /// </summary>
    private async Task MakeNodeAsync(int pid, string name, LoopDevice loop, CancellationToken ct)
    {
        var dev = DeviceNative.OpenAt(DeviceNative.AtFdCwd, $"/proc/{pid}/root/dev", DeviceNative.ODirectory | DeviceNative.ONoFollow | DeviceNative.OCloExec);
        if (dev < 0)
            throw new BlockDeviceException("QubesVMNotRunningError", $"VM not running, cannot attach device ({DeviceNative.LastError()})");
        try
        {
            if (DeviceNative.MknodAt(dev, name, DeviceNative.SIfBlk | Convert.ToUInt32("660", 8), DeviceNative.MakeDev(loop.Major, loop.Minor)) != 0)
                throw new BlockDeviceException("QubesException", $"cannot create /dev/{name} in the frontend: {DeviceNative.LastError()}");
            try
            {
                SetMode(dev, name, loop);
                await RunAsync(_settings.Mount, ["-N", pid.ToString(), "--bind", "-o", "dev,nosuid,noexec", $"/dev/{name}", $"/dev/{name}"], ct).ConfigureAwait(false);
            }
            catch
            {
                DeviceNative.UnlinkAt(dev, name, 0);
                throw;
            }
        }
        finally
        {
            DeviceNative.Close(dev);
        }
    }

    /// <summary>0660 whatever qubesd's umask: chmod through an O_PATH descriptor of the node just made (never a path the qube could redirect).</summary>
    private static void SetMode(int dev, string name, LoopDevice loop)
    {
        var node = DeviceNative.OpenAt(dev, name, 0x200000 /* O_PATH */ | DeviceNative.ONoFollow | DeviceNative.OCloExec);
        if (node < 0)
            throw new BlockDeviceException("QubesException", $"/dev/{name} vanished in the frontend");
        try
        {
            if (DeviceNative.Statx(node, "", DeviceNative.AtEmptyPath) is not { Type: DeviceNative.SIfBlk })
                throw new BlockDeviceException("QubesException", $"/dev/{name} was replaced in the frontend");
            File.SetUnixFileMode($"/proc/self/fd/{node}", (UnixFileMode)Convert.ToInt32("660", 8));
        }
        finally
        {
            DeviceNative.Close(node);
        }
    }

    /// <summary>Detaches a device from a frontend: its node goes, and the loop device if qubesd made it for this attachment.</summary>
    public async Task DetachAsync(string frontend, BackendDevice device, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var attachment = Attachments.FirstOrDefault(a => a.Frontend == frontend && a.Device.Backend == device.Backend && a.Device.Port == device.Port)
                             ?? throw new BlockDeviceException("DeviceNotAssigned", $"device {BlockRules.Printable(device.Address)} is not attached to {frontend}");
            Remove(attachment);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The frontend stopped: its attachments are released (its /dev went with it; qubesd's loop devices go now).</summary>
    public Task ForgetFrontendAsync(string frontend) => RemoveAllAsync(a => a.Frontend == frontend, null);

    /// <summary>
    /// The backend stopped: every device it exposed vanishes (reported on <see cref="Changed"/>) and is detached from
    /// its frontends (reported on <see cref="AttachmentLost"/>); it is no longer watched.
    /// </summary>
    public async Task BackendStoppedAsync(string backend)
    {
        await RemoveAllAsync(a => a.Device.Backend == backend, "backend stopped").ConfigureAwait(false);
        IReadOnlyList<BackendDevice> gone = [];
        lock (_known)
        {
            if (_known.Remove(backend, out var last))
                gone = last;
            if (backend == Dom0)
                _known[Dom0] = [];
        }
        foreach (var device in gone)
            Changed?.Invoke(new BackendEvent.DeviceVanished(backend, device));
    }

    private async Task RemoveAllAsync(Func<BlockAttachment, bool> which, string? lostBecause)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        var removed = new List<BlockAttachment>();
        try
        {
            foreach (var attachment in Attachments.Where(which))
            {
                Remove(attachment);
                removed.Add(attachment);
            }
        }
        finally
        {
            _lock.Release();
        }
        if (lostBecause is not null)
            foreach (var attachment in removed)
                AttachmentLost?.Invoke(attachment, lostBecause);
    }

    /// <summary>
    /// Under the lock. The node is unlinked from the host, which detaches its bind mount in the frontend's namespace
    /// (a mount point in another namespace is detached by unlink); only if the pid still has the frontend's mount
    /// namespace, so a reused pid never points this at someone else's /dev.
    /// </summary>
    private void Remove(BlockAttachment attachment)
    {
        if (MountNamespaceOf(attachment.FrontendInitPid) == attachment.FrontendMountNamespace)
        {
            var dev = DeviceNative.OpenAt(DeviceNative.AtFdCwd, $"/proc/{attachment.FrontendInitPid}/root/dev", DeviceNative.ODirectory | DeviceNative.ONoFollow | DeviceNative.OCloExec);
            if (dev >= 0)
            {
                DeviceNative.UnlinkAt(dev, attachment.FrontendDev, 0);
                DeviceNative.Close(dev);
            }
        }
        if (attachment.OwnsLoop)
            LoopNative.Release(attachment.Loop, _settings.DevDirectory);
        lock (_attachments)
            _attachments.Remove(attachment);
    }

    private static string? MountNamespaceOf(int pid)
    {
        try
        {
            return pid > 1 ? new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // ------------------------------------------------------------------ watching

    /// <summary>Watches a running backend qube's exposed images from now on (dom0 is always watched).</summary>
    public void Watch(string backend)
    {
        lock (_known)
            _known.TryAdd(backend, []);
    }

    /// <summary>
    /// One look at every watched backend: devices that appeared or vanished since the last look are reported on
    /// <see cref="Changed"/>; an attached device that vanished is detached (<see cref="AttachmentLost"/>).
    /// </summary>
    public async Task PollAsync(CancellationToken ct)
    {
        string[] backends;
        lock (_known)
            backends = [.. _known.Keys];
        foreach (var backend in backends)
        {
            var now = await ListAsync(backend, ct).ConfigureAwait(false);
            IReadOnlyList<BackendDevice> before;
            lock (_known)
            {
                if (!_known.TryGetValue(backend, out before!))
                    continue; // stopped meanwhile
                _known[backend] = now;
            }
            var (appeared, vanished) = BlockRules.Diff(before, now);
            foreach (var device in vanished)
            {
                await RemoveAllAsync(a => a.Device.Backend == backend && a.Device.Port == device.Port && a.Device.DeviceId == device.DeviceId, "device removed").ConfigureAwait(false);
                Changed?.Invoke(new BackendEvent.DeviceVanished(backend, device));
            }
            foreach (var device in appeared)
                Changed?.Invoke(new BackendEvent.DeviceAppeared(backend, device));
        }
    }

    /// <summary>Polls every <paramref name="interval"/> until cancelled (sysfs and one directory per backend: cheap).</summary>
    public async Task RunPollingAsync(TimeSpan interval, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await PollAsync(ct).ConfigureAwait(false);
                await Task.Delay(interval, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> args, CancellationToken ct)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new BlockDeviceException("QubesException", $"{file} did not start");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        _ = process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        if (process.ExitCode != 0)
            throw new BlockDeviceException("QubesException", $"{file} {string.Join(' ', args)}: exit {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
    }
}
