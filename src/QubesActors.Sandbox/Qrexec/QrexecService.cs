using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace QubesActors.Sandbox.Qrexec;

/// <summary>
/// qrexec between qubes, the sandbox side (docs/qrexec.md): serves every sandbox's channel (the caller of a call is
/// the qube whose channel it came in on), asks the router where each call goes, runs the service in the routed
/// target and relays its input, output and exit code; calls <see cref="QrexecRoute.Allowed.Ended"/> once per
/// allowed call. dom0 calls through <see cref="CallFromDom0Async"/> or a dom0 socket (<see cref="ListenDom0"/>).
/// One qube has at most <paramref name="maxCallsPerQube"/> calls open at once; more are refused.
/// </summary>
public sealed class QrexecService : IAsyncDisposable
{
    public const string Dom0 = "dom0";
    public const int RefusedExitCode = 126;

    private readonly SandboxManager _manager;
    private readonly IQrexecRouter _router;
    private readonly int _maxCallsPerQube;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, byte> _served = new();
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _tasks = new();
    private Socket? _dom0;
    private string? _dom0Path;

    public QrexecService(SandboxManager manager, IQrexecRouter router, QrexecServiceRunner? runner = null, int maxCallsPerQube = 64)
    {
        _manager = manager;
        _router = router;
        _maxCallsPerQube = maxCallsPerQube;
        Runner = runner ?? new QrexecServiceRunner(manager);
        _manager.ChannelOpened += Serve;
        // Channels that were opened before this service existed (adopted sandboxes).
        foreach (var (name, channel) in _manager.Channels)
            Serve(name, channel);
    }

    public QrexecServiceRunner Runner { get; }

    /// <summary>Calls open now from <paramref name="qube"/> (for tests and diagnostics).</summary>
    public int OpenCalls(string qube) => _open.TryGetValue(qube, out var n) ? n : 0;

    private void Serve(string qube, Socket channel)
    {
        if (_stopping.IsCancellationRequested || !_served.TryAdd(channel, 0))
            return;
        Track(AcceptAsync(qube, channel, identity: null));
    }

    private void Track(Task task)
    {
        _tasks.TryAdd(task, 0);
        _ = task.ContinueWith(t => _tasks.TryRemove(t, out _), TaskScheduler.Default);
    }

    private async Task AcceptAsync(string caller, Socket listener, Func<Socket, string?>? identity)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The channel was closed (the sandbox stopped) or we are stopping.
                _served.TryRemove(listener, out _);
                return;
            }
            var refusal = identity?.Invoke(connection);
            Track(HandleAsync(caller, connection, refusal));
        }
    }

    /// <summary>One call on one connection; whatever the caller sends, this ends with the connection closed.</summary>
    private async Task HandleAsync(string caller, Socket connection, string? refusal)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        var writer = new FrameWriter(stream);
        var counted = false;
        try
        {
            if (refusal is not null)
            {
                await writer.WriteAsync(QrexecProtocol.EncodeRefused(refusal), _stopping.Token).ConfigureAwait(false);
                return;
            }
            counted = true;
            if (_open.AddOrUpdate(caller, 1, (_, n) => n + 1) > _maxCallsPerQube)
            {
                await writer.WriteAsync(QrexecProtocol.EncodeRefused($"too many qrexec calls open from {caller} (at most {_maxCallsPerQube})"), _stopping.Token)
                    .ConfigureAwait(false);
                return;
            }
            var first = await QrexecProtocol.ReadAsync(stream, fromClient: true, _stopping.Token).ConfigureAwait(false);
            if (first is null)
                return;
            if (first.Value.Type != QrexecFrameType.Request)
                throw new QrexecProtocolException("the first frame must be the request");
            var request = QrexecProtocol.ParseRequest(first.Value.Payload.Span);
            // The caller is the channel's qube, whatever the request says.
            var call = new QrexecCall(caller, request.Target, request.Service, request.Argument);

            using var callCts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            var stdin = new Pipe(new PipeOptions(pauseWriterThreshold: 256 * 1024, resumeWriterThreshold: 128 * 1024));
            var reader = ReadStdinAsync(stream, stdin.Writer, callCts);
            var code = await CallAsync(call, stdin.Reader.AsStream(), new FramingStream(writer, QrexecFrameType.Stdout),
                new FramingStream(writer, QrexecFrameType.Stderr),
                message => writer.WriteAsync(QrexecProtocol.EncodeRefused(message), callCts.Token), callCts.Token).ConfigureAwait(false);
            if (code is { } exit)
                await writer.WriteAsync(QrexecProtocol.EncodeExit(exit), callCts.Token).ConfigureAwait(false);
            await callCts.CancelAsync().ConfigureAwait(false);
            await reader.ConfigureAwait(false);
        }
        catch (QrexecProtocolException e)
        {
            await TryWriteAsync(writer, QrexecProtocol.EncodeRefused($"protocol error: {e.Message}")).ConfigureAwait(false);
            await DrainAsync(connection, stream).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The caller went away or qubesd is stopping: nothing to tell.
        }
        catch (Exception e)
        {
            // Whatever else goes wrong ends this call only, never qubesd.
            await TryWriteAsync(writer, QrexecProtocol.EncodeRefused($"qrexec: internal error: {e.GetType().Name}: {e.Message}")).ConfigureAwait(false);
        }
        finally
        {
            if (counted)
                _open.AddOrUpdate(caller, 0, (_, n) => n - 1);
        }
    }

    /// <summary>
    /// Ends our side, then reads (and drops) what the caller still sent, a little and briefly: a Unix socket closed
    /// with unread bytes resets the connection, and the caller would lose the error message.
    /// </summary>
    private static async Task DrainAsync(Socket connection, Stream stream)
    {
        try
        {
            connection.Shutdown(SocketShutdown.Send);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            var buffer = new byte[16384];
            for (var total = 0; total < 1 << 20;)
            {
                var n = await stream.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                    break;
                total += n;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private static async Task TryWriteAsync(FrameWriter writer, byte[] frame)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await writer.WriteAsync(frame, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// The caller's side of a running call: stdin frames into the service's stdin, stdin EOF closes it. The caller
    /// going away (end of stream) or sending anything malformed cuts the call off (the service is killed).
    /// </summary>
    private static async Task ReadStdinAsync(Stream stream, PipeWriter stdin, CancellationTokenSource call)
    {
        var stdinOpen = true;
        try
        {
            while (true)
            {
                var frame = await QrexecProtocol.ReadAsync(stream, fromClient: true, call.Token).ConfigureAwait(false);
                if (frame is null)
                    break;
                switch (frame.Value.Type)
                {
                    case QrexecFrameType.Stdin when stdinOpen:
                        await stdin.WriteAsync(frame.Value.Payload, call.Token).ConfigureAwait(false);
                        break;
                    case QrexecFrameType.StdinEof when stdinOpen:
                        stdinOpen = false;
                        await stdin.CompleteAsync().ConfigureAwait(false);
                        break;
                    default:
                        throw new QrexecProtocolException($"unexpected {frame.Value.Type} frame during a call");
                }
            }
        }
        catch (Exception e) when (e is QrexecProtocolException or IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        if (stdinOpen)
            await stdin.CompleteAsync().ConfigureAwait(false);
        // Reaching here before the call is over means the caller is gone or misbehaved.
        await call.CancelAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Routes and runs one call. Null when refused (<paramref name="refuse"/> has told the caller); else the
    /// service's exit code. <see cref="QrexecRoute.Allowed.Ended"/> is called exactly once for an allowed call.
    /// </summary>
    private async Task<int?> CallAsync(QrexecCall call, Stream stdin, Stream stdout, Stream stderr, Func<string, Task> refuse, CancellationToken ct)
    {
        QrexecRoute route;
        try
        {
            route = await _router.RouteAsync(call, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            route = new QrexecRoute.Denied($"qrexec: routing failed: {e.Message}");
        }
        if (route is QrexecRoute.Denied denied)
        {
            await refuse(denied.Message).ConfigureAwait(false);
            return null;
        }
        if (route is QrexecRoute.Served served)
            return await served.Run(stdin, stdout, stderr, ct).ConfigureAwait(false);
        var allowed = (QrexecRoute.Allowed)route;
        var code = -1;
        try
        {
            code = await Runner.RunServiceAsync(allowed.TargetQube, call.Caller, call.Service, call.Argument, stdin, stdout, stderr, ct, allowed.Launched).ConfigureAwait(false);
            return code;
        }
        catch (Exception e) when (e is SandboxException or System.ComponentModel.Win32Exception)
        {
            // The target is not running (it stopped between the decision and the start of the service), or the
            // launcher could not start.
            await refuse($"{allowed.TargetQube}: {e.Message}").ConfigureAwait(false);
            return null;
        }
        finally
        {
            try
            {
                await allowed.Ended(code).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The runtime's cleanup failing is the runtime's to report; the call itself is over.
            }
        }
    }

    /// <summary>
    /// A call from dom0 (<c>qvm run</c>): routed through the same router with caller <c>dom0</c>. Returns the
    /// service's exit code, or 126 with "Request refused: ..." written to <paramref name="stderr"/> when denied.
    /// </summary>
    public async Task<int> CallFromDom0Async(string target, string service, string argument, Stream stdin, Stream stdout, Stream stderr, CancellationToken ct)
    {
        var request = QrexecProtocol.ParseRequest(Encoding.ASCII.GetBytes(target + "\0" + (argument.Length == 0 ? service : $"{service}+{argument}")));
        var code = await CallAsync(new QrexecCall(Dom0, request.Target, request.Service, request.Argument), stdin, stdout, stderr,
            async message => await stderr.WriteAsync(Encoding.UTF8.GetBytes($"Request refused: {message}\n"), ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        return code ?? RefusedExitCode;
    }

    /// <summary>
    /// Serves dom0's qrexec socket at <paramref name="path"/> (mode 0600; a peer that is not root is refused): the
    /// channel protocol, every call with caller <c>dom0</c>. For a dom0 CLI (<see cref="QrexecClient"/>).
    /// </summary>
    public void ListenDom0(string path)
    {
        if (_dom0 is not null)
            throw new InvalidOperationException("the dom0 socket is already served");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.Delete(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        // 0600 from the start: the umask-made file is never open to others, not even briefly.
        socket.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        socket.Listen(64);
        _dom0 = socket;
        _dom0Path = path;
        Track(AcceptAsync(Dom0, socket, c => PeerUid(c) == 0 ? null : "the dom0 qrexec socket is for root only"));
    }

    /// <summary>The uid of a Unix socket's peer (SO_PEERCRED), -1 if unknown.</summary>
    private static int PeerUid(Socket socket)
    {
        Span<byte> cred = stackalloc byte[12];
        try
        {
            // SOL_SOCKET = 1, SO_PEERCRED = 17 on Linux: struct ucred { pid, uid, gid }.
            return socket.GetRawSocketOption(1, 17, cred) == 12 ? MemoryMarshal.Read<int>(cred[4..]) : -1;
        }
        catch (SocketException)
        {
            return -1;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _manager.ChannelOpened -= Serve;
        await _stopping.CancelAsync().ConfigureAwait(false);
        _dom0?.Dispose();
        if (_dom0Path is not null)
            File.Delete(_dom0Path);
        try
        {
            await Task.WhenAll(_tasks.Keys).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException or SocketException)
        {
        }
        _stopping.Dispose();
    }
}
