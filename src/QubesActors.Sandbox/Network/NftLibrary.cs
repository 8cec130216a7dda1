using System.Runtime.InteropServices;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// nftables through libnftables, the library behind <c>nft</c>, in this process: a script applied inside a network
/// namespace without a process (a process start costs 8–15 ms on this machine; a small transaction costs well under
/// 1 ms in the library). Each call makes a context on a thread that joined the namespace (libnftables 1.0.6 opens its
/// netlink socket in <c>nft_ctx_new</c>, and a socket belongs to the namespace of the thread that opens it) and frees
/// it before returning: no socket stays open to keep a deleted namespace alive.
/// </summary>
internal static partial class NftLibrary
{
    public const string Name = "libnftables.so.1";

    // Parsing and netlink need ~100 KiB of stack (a 64 KiB receive buffer lives on it; 96 KiB crashed in a trial).
    private const int StackSize = 1024 * 1024;

    private const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, NetlinkNetfilter = 12;

    // libnftables keeps process-wide state (a once-only init in nft_ctx_new, an interface cache each call releases):
    // one call at a time. Waiters wait here, not on threads of their own.
    private static readonly SemaphoreSlim Gate = new(1, 1);

    // Decided once: without the library (libnftables1 not installed) the caller runs the nft program instead.
    private static readonly Lazy<bool> Loaded = new(() => NativeLibrary.TryLoad(Name, out _));

    public static bool Available => Loaded.Value;

    /// <summary>
    /// Descriptors opened at first use, while the process holds few, and kept: their numbers are below select()'s
    /// limit of 1024, and each call frees them in its own descriptor table for the library's socket.
    /// </summary>
    private static readonly Lazy<int[]> LowDescriptors = new(() =>
    {
        var fds = new int[4];
        for (var i = 0; i < fds.Length; i++)
        {
            fds[i] = Native.Open("/dev/null", 0x80000 /* O_RDONLY | O_CLOEXEC */);
            if (fds[i] < 0 || fds[i] >= 1000)
                throw new IOException($"no descriptor below 1000 is free for libnftables' socket (got {fds[i]})");
        }
        return fds;
    });

    [LibraryImport(Name, EntryPoint = "nft_ctx_new")]
    private static partial nint CtxNew(uint flags);

    [LibraryImport(Name, EntryPoint = "nft_ctx_free")]
    private static partial void CtxFree(nint ctx);

    [LibraryImport(Name, EntryPoint = "nft_ctx_buffer_output")]
    private static partial int BufferOutput(nint ctx);

    [LibraryImport(Name, EntryPoint = "nft_ctx_buffer_error")]
    private static partial int BufferError(nint ctx);

    [LibraryImport(Name, EntryPoint = "nft_ctx_get_output_buffer")]
    private static partial nint OutputBuffer(nint ctx);

    [LibraryImport(Name, EntryPoint = "nft_ctx_get_error_buffer")]
    private static partial nint ErrorBuffer(nint ctx);

    [LibraryImport(Name, EntryPoint = "nft_run_cmd_from_buffer", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RunCommands(nint ctx, string buffer);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    /// <summary>
    /// Runs <paramref name="commands"/> in the named namespace, all of them one transaction (as <c>nft -f</c>), and
    /// returns what nft printed. A failure throws <see cref="NetworkCommandException"/> with nft's error text, exit
    /// code 1 (nft's), and with <paramref name="showCommands"/> the commands.
    /// </summary>
    /// <param name="commandLine">How the failure names the call, as the program would be run (<c>nft -f -</c>).</param>
    public static async Task<string> RunAsync(string namespaceName, string commands, string commandLine, bool showCommands, CancellationToken cancellationToken)
    {
        await Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        (int Code, string Output, string Error) result;
        try
        {
            // Opened here, in the process's table, not in the call's own.
            var low = LowDescriptors.Value;
            // A descriptor table of the thread's own: libnftables opens its netlink socket without SOCK_CLOEXEC, and a
            // program another thread starts meanwhile (a sandbox's bwrap passes descriptors on) would keep it, and with
            // it this namespace, alive; and there the socket gets one of the low numbers kept for it (Run).
            result = await NetNamespaces.InAsync(Path.Combine(NetNamespaces.Directory, namespaceName), () => Run(commands, low), StackSize, ownDescriptors: true)
                .ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new NetworkCommandException($"`{commandLine}` in network namespace {namespaceName}: {e.Message}", -1, e.Message);
        }
        finally
        {
            Gate.Release();
        }
        if (result.Code != 0)
        {
            var script = showCommands ? $"\n--- stdin ---\n{commands}" : "";
            throw new NetworkCommandException(
                $"`{commandLine}` in network namespace {namespaceName} failed (libnftables, {result.Code}): {result.Error.Trim()}{script}", 1, result.Error);
        }
        return result.Output;
    }

    /// <summary>One context for one call, on the calling thread (the namespace's, with its own descriptor table; it ends with the call).</summary>
    private static (int Code, string Output, string Error) Run(string commands, int[] low)
    {
        // libnftables waits on its socket with select(), and glibc aborts the whole process on a descriptor of 1024
        // or more; qubesd holds more than that with a few hundred sandboxes. The numbers kept low for this are closed
        // in this thread's own table (the process keeps them), so the socket gets one of them.
        foreach (var fd in low)
            Native.Close(fd);
        // nft_ctx_new exits the whole process when it cannot open its netlink socket: try one first, fail only this call.
        var probe = Socket(AfNetlink, SockRaw | SockCloexec, NetlinkNetfilter);
        if (probe < 0)
            throw new IOException($"netfilter netlink socket: {Marshal.GetLastPInvokeErrorMessage()}");
        Native.Close(probe);
        var ctx = CtxNew(0);
        if (ctx == 0)
            throw new IOException("nft_ctx_new failed");
        try
        {
            if (BufferOutput(ctx) != 0 || BufferError(ctx) != 0)
                throw new IOException("libnftables could not buffer its output");
            var code = RunCommands(ctx, commands);
            return (code, Marshal.PtrToStringUTF8(OutputBuffer(ctx)) ?? "", Marshal.PtrToStringUTF8(ErrorBuffer(ctx)) ?? "");
        }
        finally
        {
            CtxFree(ctx);
        }
    }
}
