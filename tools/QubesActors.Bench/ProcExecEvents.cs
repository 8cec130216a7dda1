using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace QubesActors.Bench;

/// <summary>
/// The kernel's process events (the proc connector, <c>NETLINK_CONNECTOR</c>/<c>CN_IDX_PROC</c>, root only): every exec
/// on the machine with its CLOCK_MONOTONIC time, which is <see cref="System.Diagnostics.Stopwatch"/>'s clock. The bench
/// uses it to see when a service process starts inside a sandbox: the moment its exec completed, not when it first
/// wrote something.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed partial class ProcExecEvents : IDisposable
{
    private const int AfNetlink = 16, SockDgram = 2, NetlinkConnector = 11;
    private const uint CnIdxProc = 1, CnValProc = 1, ProcCnMcastListen = 1, ProcEventExec = 2;
    private const ushort NlmsgDone = 3;

    private readonly int _fd;
    private readonly Thread _reader;
    private volatile bool _stopping;

    /// <summary>(time in Stopwatch ticks, pid, comm) of each exec seen.</summary>
    public ConcurrentQueue<(long Timestamp, int Pid, string Comm)> Execs { get; } = new();

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static partial int Bind(int fd, byte[] address, int length);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint Send(int fd, byte[] buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint Recv(int fd, byte[] buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "shutdown")]
    private static partial int Shutdown(int fd, int how);

    public ProcExecEvents()
    {
        _fd = Socket(AfNetlink, SockDgram, NetlinkConnector);
        if (_fd < 0)
            throw new InvalidOperationException($"proc connector: socket: errno {Marshal.GetLastPInvokeError()}");
        var address = new byte[12]; // sockaddr_nl: family, pad, pid, groups
        BinaryPrimitives.WriteUInt16LittleEndian(address, AfNetlink);
        BinaryPrimitives.WriteUInt32LittleEndian(address.AsSpan(8), CnIdxProc);
        if (Bind(_fd, address, address.Length) < 0)
            throw new InvalidOperationException($"proc connector: bind: errno {Marshal.GetLastPInvokeError()}");
        // nlmsghdr (16) + cn_msg (20) + the op (4): listen.
        var listen = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(listen, 40);
        BinaryPrimitives.WriteUInt16LittleEndian(listen.AsSpan(4), NlmsgDone);
        // nlmsg_pid stays 0: this process may already hold netlink sockets (rtnetlink, libnftables), and the first of
        // them has the port id getpid(); this one got another from the kernel.
        BinaryPrimitives.WriteUInt32LittleEndian(listen.AsSpan(16), CnIdxProc);
        BinaryPrimitives.WriteUInt32LittleEndian(listen.AsSpan(20), CnValProc);
        BinaryPrimitives.WriteUInt16LittleEndian(listen.AsSpan(32), 4);
        BinaryPrimitives.WriteUInt32LittleEndian(listen.AsSpan(36), ProcCnMcastListen);
        if (Send(_fd, listen, listen.Length, 0) < 0)
            // ECONNREFUSED when this thread is not in the initial network namespace, the only one with the connector.
            throw new InvalidOperationException($"proc connector: listen: errno {Marshal.GetLastPInvokeError()}");
        _reader = new Thread(Read) { IsBackground = true, Name = "proc-exec-events" };
        _reader.Start();
    }

    private void Read()
    {
        var buffer = new byte[4096];
        while (!_stopping)
        {
            var n = (int)Recv(_fd, buffer, buffer.Length, 0);
            if (n <= 0)
                return;
            // nlmsghdr (16), cn_msg (20), proc_event: what (4), cpu (4), timestamp_ns (8), exec: pid (4), tgid (4).
            if (n < 16 + 20 + 24 || BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(36)) != ProcEventExec)
                continue;
            var timestamp = (long)BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(44));
            var pid = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(52));
            string comm;
            try
            {
                comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
            }
            catch (IOException)
            {
                comm = "";
            }
            // ktime_get_ns() is CLOCK_MONOTONIC in ns, Stopwatch's clock on Linux (at 1 GHz there; scaled otherwise).
            Execs.Enqueue((System.Diagnostics.Stopwatch.Frequency == 1_000_000_000 ? timestamp
                : (long)(timestamp * (System.Diagnostics.Stopwatch.Frequency / 1e9)), pid, comm));
        }
    }

    /// <summary>The first exec of a process named <paramref name="comm"/> after <paramref name="since"/> (Stopwatch ticks), if any.</summary>
    public long? FirstExecAfter(string comm, long since) =>
        Execs.Where(e => e.Timestamp >= since && e.Comm == comm).Select(e => (long?)e.Timestamp).Min();

    public void Dispose()
    {
        _stopping = true;
        _ = Shutdown(_fd, 2);
        _ = Close(_fd);
    }
}
