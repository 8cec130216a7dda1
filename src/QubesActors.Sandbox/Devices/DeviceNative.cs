using System.Runtime.InteropServices;

namespace QubesActors.Sandbox.Devices;

/// <summary>
/// The fd-based libc calls device handling needs: paths a qube controls are walked one component at a time with
/// O_NOFOLLOW (openat), inspected through the open descriptor (statx), and device nodes are made and removed relative
/// to a directory descriptor, so nothing a qube renames or symlinks in between redirects a call of qubesd.
/// </summary>
internal static partial class DeviceNative
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtEmptyPath = 0x1000;
    public const int ORdOnly = 0;
    public const int ONonBlock = 0x800;
    public const int OCloExec = 0x80000;
    // These two differ between architectures (asm-generic vs x86).
    public static int ODirectory => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;
    public static int ONoFollow => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

    public const uint SIfMt = 0xF000;
    public const uint SIfReg = 0x8000;
    public const uint SIfDir = 0x4000;
    public const uint SIfBlk = 0x6000;

    [LibraryImport("libc", EntryPoint = "openat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int OpenAt(int dirFd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "mknodat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int MknodAt(int dirFd, string path, uint mode, ulong dev);

    [LibraryImport("libc", EntryPoint = "unlinkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int UnlinkAt(int dirFd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    public static partial int FChmod(int fd, uint mode);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int StatxRaw(int dirFd, string path, int flags, uint mask, byte[] buffer);

    /// <summary>The few fields of statx(2) used here (its layout is the same on every architecture).</summary>
    public readonly record struct Stat(uint Mode, uint Nlink, ulong Inode, long Size, uint DevMajor, uint DevMinor)
    {
        public uint Type => Mode & SIfMt;
        public bool IsRegular => Type == SIfReg;
        public ulong Device => MakeDev(DevMajor, DevMinor);
    }

    public static Stat? Statx(int dirFd, string path, int flags)
    {
        var buffer = new byte[256];
        if (StatxRaw(dirFd, path, flags, 0x7ff /* STATX_BASIC_STATS */, buffer) != 0)
            return null;
        return new Stat(BitConverter.ToUInt16(buffer, 28), BitConverter.ToUInt32(buffer, 16), BitConverter.ToUInt64(buffer, 32),
            BitConverter.ToInt64(buffer, 40), BitConverter.ToUInt32(buffer, 136), BitConverter.ToUInt32(buffer, 140));
    }

    /// <summary>glibc's makedev: the 64-bit dev_t of a major:minor pair.</summary>
    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    public static string LastError() => new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError()).Message;
}

/// <summary>The loop driver's ioctls: bind an open file to a free loop device, and release one.</summary>
internal static partial class LoopNative
{
    private const uint LoopCtlGetFree = 0x4C82;
    private const uint LoopConfigure = 0x4C0A;
    private const uint LoopClrFd = 0x4C01;
    private const uint LoFlagsReadOnly = 1;
    private const int EBusy = 16;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, nint argument);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, byte[] argument);

    /// <summary>
    /// Binds <paramref name="backingFd"/> to a free loop device (LOOP_CONFIGURE, Linux 5.8) and returns its name. The
    /// descriptor, not a path, is what the loop device gets: what was validated is what is attached.
    /// </summary>
    public static string Configure(int backingFd, bool readOnly, string devDirectory = "/dev")
    {
        var control = DeviceNative.OpenAt(DeviceNative.AtFdCwd, Path.Combine(devDirectory, "loop-control"), 2 /* O_RDWR */ | DeviceNative.OCloExec);
        if (control < 0)
            throw new BlockDeviceException("QubesException", $"cannot open {devDirectory}/loop-control: {DeviceNative.LastError()}");
        try
        {
            // Another process may take the free device between the two calls: ask again.
            for (var attempt = 0; attempt < 16; attempt++)
            {
                var number = Ioctl(control, LoopCtlGetFree, 0);
                if (number < 0)
                    throw new BlockDeviceException("QubesException", $"no free loop device: {DeviceNative.LastError()}");
                var loop = DeviceNative.OpenAt(DeviceNative.AtFdCwd, Path.Combine(devDirectory, $"loop{number}"), (readOnly ? 0 : 2) | DeviceNative.OCloExec);
                if (loop < 0)
                    throw new BlockDeviceException("QubesException", $"cannot open {devDirectory}/loop{number}: {DeviceNative.LastError()}");
                try
                {
                    // struct loop_config { u32 fd; u32 block_size; struct loop_info64 info (lo_flags at 52); u64 reserved[8]; }
                    var config = new byte[304];
                    BitConverter.TryWriteBytes(config.AsSpan(0), (uint)backingFd);
                    BitConverter.TryWriteBytes(config.AsSpan(8 + 52), readOnly ? LoFlagsReadOnly : 0u);
                    if (Ioctl(loop, LoopConfigure, config) == 0)
                        return $"loop{number}";
                    if (Marshal.GetLastPInvokeError() != EBusy)
                        throw new BlockDeviceException("QubesException", $"cannot configure loop{number}: {DeviceNative.LastError()}");
                }
                finally
                {
                    DeviceNative.Close(loop);
                }
            }
            throw new BlockDeviceException("QubesException", "no free loop device (all taken while trying)");
        }
        finally
        {
            DeviceNative.Close(control);
        }
    }

    /// <summary>
    /// Releases a loop device (LOOP_CLR_FD). While something still holds it open the kernel marks it to clear itself at
    /// the last close instead. False when it was not bound (already released).
    /// </summary>
    public static bool Release(string name, string devDirectory = "/dev")
    {
        var loop = DeviceNative.OpenAt(DeviceNative.AtFdCwd, Path.Combine(devDirectory, name), DeviceNative.OCloExec);
        if (loop < 0)
            return false;
        try
        {
            return Ioctl(loop, LoopClrFd, 0) == 0;
        }
        finally
        {
            DeviceNative.Close(loop);
        }
    }
}
