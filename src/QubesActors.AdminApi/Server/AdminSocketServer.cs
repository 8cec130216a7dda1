using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using QubesActors.AdminApi.Methods;
using QubesActors.AdminApi.Wire;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Server;

public sealed record AdminServerOptions
{
    public required string SocketPath { get; init; }
    /// <summary>A client that has not sent its whole request (EOF) by then is dropped without a response.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public int MaxRequestBytes { get; init; } = RequestFraming.MaxRequestBytes;
    /// <summary>Calls served at once; further clients wait in the listen backlog.</summary>
    public int MaxConnections { get; init; } = 64;
    /// <summary>Open event streams (admin.Events); they do not hold a call slot. Past this a new stream is refused by closing.</summary>
    public int MaxEventStreams { get; init; } = 256;
    public int Backlog { get; init; } = 128;
    /// <summary>Group the socket file is given to when it exists (qubesd's <c>qubes</c>); null or empty = the daemon's own.</summary>
    public string? SocketGroup { get; init; } = "qubes";
    /// <summary>Warnings (refused calls, framing errors, failures); null = silent.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>The socket path is served by a live process (a second qubesd must not start).</summary>
public sealed class AdminSocketInUseException(string path)
    : Exception($"the Admin API socket {path} is in use by a running process (is another qubesd running on this state directory?)");

/// <summary>
/// The qubesd Unix socket: one request per connection, read until the client's EOF (bounded in size and time),
/// answered with one ok/exception frame or, for streaming methods, event frames until either side goes away.
/// Caller identity comes from SO_PEERCRED. The socket file is created with mode 0660.
/// </summary>
public sealed class AdminSocketServer : IAsyncDisposable
{
    private readonly AdminServerOptions _options;
    private readonly AdminDispatcher _dispatcher;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _slots;
    private readonly SemaphoreSlim _streams;
    private readonly ServedConnections _connections = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;

    public AdminSocketServer(AdminServerOptions options, AdminDispatcher dispatcher)
    {
        _options = options;
        _dispatcher = dispatcher;
        _slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
        _streams = new SemaphoreSlim(options.MaxEventStreams, options.MaxEventStreams);
    }

    public string SocketPath => _options.SocketPath;

    /// <summary>
    /// Refuses a live socket (a connect succeeds), removes a stale one (nobody listening). Anything else at the path
    /// (a regular file, a directory) is refused too rather than deleted.
    /// </summary>
    public static void EnsureAvailable(string path)
    {
        if (Directory.Exists(path))
            throw new IOException($"{path} exists and is a directory, not a socket");
        if (!File.Exists(path))
            return;
        if (IsOpenableFile(path))
            throw new IOException($"{path} exists and is a regular file, not a socket; not removing it");
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException)
            {
                // Nobody listening: a stale socket from a daemon that did not stop cleanly.
                File.Delete(path);
                return;
            }
        }
        throw new AdminSocketInUseException(path);
    }

    /// <summary>open(2) of a socket fails (ENXIO); a regular file opens. .NET has no S_ISSOCK, so this tells them apart.</summary>
    private static bool IsOpenableFile(string path)
    {
        try
        {
            using var _ = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Binds (mode 0660, no window with a wider mode) and starts accepting.</summary>
    public void Start()
    {
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("the qubesd socket needs Unix file modes");
        if (_listener is not null)
            throw new InvalidOperationException("already started");
        _listener = Bind(_options.SocketPath, _options.SocketGroup, _options.Backlog, _options.Log);
        _acceptLoop = Task.Run(AcceptLoop);
    }

    /// <summary>
    /// Binds a Unix socket with mode 0660 (bound inside a private directory, then moved into place: no window with a
    /// wider mode), given to <paramref name="group"/> when it exists; a stale socket is replaced, a live one refused
    /// (<see cref="EnsureAvailable"/>). Shared with the policy socket.
    /// </summary>
    public static Socket Bind(string socketPath, string? group, int backlog, Action<string>? log)
    {
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("the qubesd sockets need Unix file modes");
        var path = Path.GetFullPath(socketPath);
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        EnsureAvailable(path);
        // Bind inside a private directory, set the mode, then move the socket into place.
        var staging = Path.Combine(directory, $".qubesd-{Environment.ProcessId}-{Guid.NewGuid():N}"[..24]);
        Directory.CreateDirectory(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            var staged = Path.Combine(staging, "s");
            listener.Bind(new UnixDomainSocketEndPoint(staged));
            File.SetUnixFileMode(staged, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            if (!string.IsNullOrEmpty(group) && Server.SocketGroup.Find(group) is { } gid && !Server.SocketGroup.Apply(staged, gid))
                log?.Invoke($"cannot give {path} to group {group} (errno {Server.SocketGroup.LastError}); it keeps the daemon's group");
            File.Move(staged, path);
            listener.Listen(backlog);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
        return listener;
    }

    private async Task AcceptLoop()
    {
        var ct = _stopping.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _slots.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                _slots.Release();
                if (ct.IsCancellationRequested)
                    return;
                _options.Log?.Invoke($"accept failed: {e.Message}");
                continue;
            }
            var slot = new Slot(_slots);
            _connections.Start(() => Serve(client, slot, ct), slot.Release);
        }
    }

    /// <summary>A call slot, released once: when the connection ends, or early when it turns into an event stream.</summary>
    private sealed class Slot(SemaphoreSlim slots)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                slots.Release();
        }
    }

    private async Task Serve(Socket client, Slot slot, CancellationToken stopping)
    {
        using var _ = client;
        try
        {
            var peer = PeerCredentials.Of(client);
            var request = await ReadRequest(client, stopping).ConfigureAwait(false);
            if (request is null)
                return;
            AdminRequest? parsed;
            FramingError? error;
            try
            {
                RequestFraming.TryParse(request.Value.Span, out parsed, out error);
            }
            finally
            {
                // The parsed request holds copies; the pooled buffer goes back before the (possibly long) call.
                ReturnBuffer(request.Value);
            }
            if (parsed is null)
            {
                _options.Log?.Invoke($"framing error ({error!.Reason}) from pid {peer?.Pid}; connection aborted");
                return;
            }
            var caller = new Caller(parsed!.Source, peer?.Uid, peer?.Pid);
            var streams = _dispatcher.Table.Find(parsed.Method)?.Streams == true;
            if (streams)
            {
                if (!_streams.Wait(0, CancellationToken.None))
                {
                    _options.Log?.Invoke($"more than {_options.MaxEventStreams} event streams open; connection closed");
                    return;
                }
                slot.Release();
            }
            try
            {
                await Answer(client, parsed, caller, stopping).ConfigureAwait(false);
            }
            finally
            {
                if (streams)
                    _streams.Release();
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or the server is stopping: nothing to answer.
        }
    }

    /// <summary>Dispatches and writes the answer: one ok or exception frame, or nothing more after an event stream.</summary>
    private async Task Answer(Socket client, AdminRequest parsed, Caller caller, CancellationToken stopping)
    {
        var sink = new SocketFrameSink(client);
        AdminReply reply;
        try
        {
            reply = await _dispatcher.DispatchAsync(parsed, caller, sink, stopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
        {
            if (sink.Broken)
                return;
            // Not a Qubes error: qubesd logs it and aborts the connection without a response.
            _options.Log?.Invoke($"call '{parsed.Method}'+'{parsed.Arg}' ('{parsed.Source}' -> '{parsed.Dest}') failed: {e.GetType().Name}: {e.Message}; connection aborted");
            return;
        }
        switch (reply)
        {
            case AdminReply.Ok ok:
                await sink.WriteAsync(ok.EncodedFrame ?? AdminFrames.EncodeOk(ok.Content), stopping).ConfigureAwait(false);
                break;
            case AdminReply.Failed failed:
                if (failed.Error is Core.Errors.ProtocolError or Core.Errors.PermissionDenied)
                    _options.Log?.Invoke($"failed call '{parsed.Method}'+'{parsed.Arg}' ('{parsed.Source}' -> '{parsed.Dest}') with payload of {parsed.UntrustedPayload.Length} bytes due to {failed.Error.QubesClassName}: {failed.Error.Message}");
                await sink.WriteAsync(AdminFrames.EncodeException(failed.Error.QubesClassName, failed.Error.Message), stopping).ConfigureAwait(false);
                break;
        }
        client.Shutdown(SocketShutdown.Both);
    }

    /// <summary>
    /// Reads until EOF into a pooled buffer (give it back with <see cref="ReturnBuffer"/>); null (drop the connection) when
    /// the request is too long or the client is too slow. A request is usually a few hundred bytes that come with the EOF,
    /// so one connection costs no buffer allocation.
    /// </summary>
    private async Task<Memory<byte>?> ReadRequest(Socket client, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(_options.ReadTimeout);
        var limit = _options.MaxRequestBytes + 1;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(limit, 4096));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(limit, buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    var request = buffer.AsMemory(0, length);
                    buffer = null;
                    return request;
                }
                length += n;
                if (length > _options.MaxRequestBytes)
                {
                    _options.Log?.Invoke($"request longer than {_options.MaxRequestBytes} bytes; connection closed");
                    return null;
                }
            }
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            _options.Log?.Invoke($"no complete request within {_options.ReadTimeout.TotalSeconds:0.#} s; connection dropped");
            return null;
        }
        finally
        {
            if (buffer is not null)
                ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void ReturnBuffer(Memory<byte> request)
    {
        if (MemoryMarshal.TryGetArray<byte>(request, out var segment) && segment.Array is { } array)
            ArrayPool<byte>.Shared.Return(array);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        await _connections.StopAsync(_options.SocketPath, bound: _listener is not null).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private sealed class SocketFrameSink(Socket socket) : IFrameSink
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        public bool Broken { get; private set; }

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                while (frame.Length > 0)
                {
                    var n = await socket.SendAsync(frame, SocketFlags.None, ct).ConfigureAwait(false);
                    frame = frame[n..];
                }
            }
            catch (SocketException)
            {
                Broken = true;
                throw;
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}
