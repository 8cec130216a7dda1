using System.Runtime.InteropServices;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// Network namespaces without a process each: a named namespace made as <c>ip netns add</c> makes it (a new namespace
/// bind-mounted on <c>/run/netns/NAME</c>) with its <c>lo</c> brought up, and programs started inside a namespace by
/// a thread that joined it (a process starts in the network namespace of the thread that forks it). Each step runs on
/// a thread of its own that ends with it, so no pooled thread is ever left in another namespace. On a start-up path
/// where every process costs 5–10 ms on this machine, these save one process per qube and one exec per chain update.
/// </summary>
internal static partial class NetNamespaces
{
    public const string Directory = "/run/netns";
    private const int CloneNewNet = 0x40000000, CloneFiles = 0x400;
    private const int ORdOnly = 0, OCloexec = 0x80000, OCreat = 0x40, OExcl = 0x80;
    private const ulong MsBind = 4096;
    private const int AfInet = 2, SockDgram = 2;
    private const ulong SiocGifFlags = 0x8913, SiocSifFlags = 0x8914;
    private const short IffUp = 1;

    [LibraryImport("libc", EntryPoint = "unshare", SetLastError = true)]
    private static partial int Unshare(int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, byte[] ifreq);

    [LibraryImport("libc", EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Mount(string source, string target, string? fileSystemType, ulong flags, string? data);

    /// <summary>
    /// Whether <see cref="Directory"/> is set up as <c>ip</c> sets it up (a shared mount point, so a namespace's
    /// bind mount is seen in every mount namespace). Until some <c>ip netns add</c> did it, the caller uses <c>ip</c>.
    /// </summary>
    public static bool DirectoryReady() => _directoryReady || (_directoryReady = File.ReadLines("/proc/self/mountinfo").Any(line =>
        line.Split(' ') is [_, _, _, _, Directory, ..] fields && fields.Skip(6).TakeWhile(f => f != "-").Any(f => f.StartsWith("shared:", StringComparison.Ordinal))));

    // Once set up it stays so: no need to read mountinfo (long with many sandboxes' mounts) on every start again.
    private static volatile bool _directoryReady;

    /// <summary>Creates the named namespace <paramref name="name"/> with <c>lo</c> up.</summary>
    public static void Create(string name) => OnOwnThread(() =>
    {
        var path = Path.Combine(Directory, name);
        var mountPoint = Open(path, ORdOnly | OCreat | OExcl | OCloexec, 0);
        if (mountPoint < 0)
            throw Error($"creating {path}");
        Close(mountPoint);
        try
        {
            if (Unshare(CloneNewNet) != 0)
                throw Error("unshare(CLONE_NEWNET)");
            if (Mount("/proc/thread-self/ns/net", path, null, MsBind, null) != 0)
                throw Error($"binding the namespace on {path}");
            LoopbackUp();
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    });

    /// <summary>Runs <paramref name="action"/> on a new thread that has joined the namespace at <paramref name="namespacePath"/>.</summary>
    public static T In<T>(string namespacePath, Func<T> action) => OnOwnThread(() => Joined(namespacePath, action));

    /// <summary>
    /// As <see cref="In{T}"/>, without a caller's thread blocked meanwhile. With <paramref name="ownDescriptors"/> the
    /// namespace's thread first takes a copy of the descriptor table of its own (unshare(CLONE_FILES)): what native code
    /// opens there (libnftables' netlink socket, opened without close-on-exec) is never inherited by a program another
    /// thread starts, and what it closes there stays open for the process. Such a thread must never hand anything to
    /// the runtime: a thread the runtime created from it would share its table. So it only runs the job; a dedicated
    /// thread at home waits for it and completes the task.
    /// </summary>
    public static Task<T> InAsync<T>(string namespacePath, Func<T> action, int stackSize, bool ownDescriptors = false)
    {
        EnsureProcessSignalsAtHome();
        return Task.Factory.StartNew(() => OnOwnThread(() =>
        {
            if (ownDescriptors && Unshare(CloneFiles) != 0)
                throw Error("unshare(CLONE_FILES)");
            return Joined(namespacePath, action);
        }, stackSize), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary><paramref name="action"/> inside the namespace, the calling thread back in its own afterwards.</summary>
    private static T Joined<T>(string namespacePath, Func<T> action)
    {
        var home = Join(namespacePath);
        try
        {
            return action();
        }
        finally
        {
            Return(home);
        }
    }

    /// <summary>Joins the namespace; returns a descriptor of the thread's own one, for <see cref="Return"/>.</summary>
    private static int Join(string namespacePath)
    {
        var home = Open("/proc/thread-self/ns/net", ORdOnly | OCloexec, 0);
        if (home < 0)
            throw Error("opening this thread's network namespace");
        var fd = Open(namespacePath, ORdOnly | OCloexec, 0);
        if (fd < 0)
        {
            Close(home);
            throw Error($"opening {namespacePath}");
        }
        try
        {
            if (SetNs(fd, CloneNewNet) != 0)
            {
                Close(home);
                throw Error($"joining {namespacePath}");
            }
        }
        finally
        {
            Close(fd);
        }
        return home;
    }

    /// <summary>
    /// Back to the namespace the thread came from, before it hands anything to the runtime. A thread that cannot go
    /// back must not go on: whatever the runtime started from it would live in a qube's network.
    /// </summary>
    private static void Return(int home)
    {
        var back = SetNs(home, CloneNewNet);
        Close(home);
        if (back != 0)
            Environment.FailFast($"qubesd: a thread cannot return from a qube's network namespace: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>
    /// The runtime starts its SIGCHLD thread at the first process start, from the starting thread; that thread then
    /// completes every process's exit, and the pool threads it needs for that are born from it. When the first start
    /// is one inside a qube's network namespace, all of them live there. One start from here first (a thread at home:
    /// no job has joined anything yet when this runs first) keeps them out.
    /// </summary>
    private static void EnsureProcessSignalsAtHome()
    {
        if (Interlocked.Exchange(ref _processSignalsAtHome, 1) != 0)
            return;
        using var probe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/true") { UseShellExecute = false });
        probe?.WaitForExit();
    }

    private static int _processSignalsAtHome;

    private static void LoopbackUp()
    {
        var socket = Socket(AfInet, SockDgram, 0);
        if (socket < 0)
            throw Error("socket");
        try
        {
            // struct ifreq: 16 bytes of name, then the flags (short) in the union.
            var ifreq = new byte[40];
            "lo"u8.CopyTo(ifreq);
            if (Ioctl(socket, SiocGifFlags, ifreq) != 0)
                throw Error("SIOCGIFFLAGS lo");
            BitConverter.TryWriteBytes(ifreq.AsSpan(16), (short)(BitConverter.ToInt16(ifreq, 16) | IffUp));
            if (Ioctl(socket, SiocSifFlags, ifreq) != 0)
                throw Error("SIOCSIFFLAGS lo");
        }
        finally
        {
            Close(socket);
        }
    }

    private static void OnOwnThread(Action action) => OnOwnThread(() =>
    {
        action();
        return true;
    });

    /// <summary>A thread that changes namespace ends with the job: no other work ever runs in that namespace by accident.</summary>
    private static T OnOwnThread<T>(Func<T> job, int stackSize = 256 * 1024)
    {
        EnsureProcessSignalsAtHome();
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = job();
            }
            catch (Exception e)
            {
                error = e;
            }
        }, stackSize) { IsBackground = true, Name = "netns" };
        thread.Start();
        thread.Join();
        if (error is not null)
            throw error;
        return result;
    }

    private static IOException Error(string what) => new($"{what}: {Marshal.GetLastPInvokeErrorMessage()}");
}
