using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using QubesActors.AdminApi.Wire;

namespace QubesActors.AdminApi.Client;

/// <summary>
/// A qubesd client as <c>qubesadmin.app.QubesLocal.qubesd_call</c> is: connect, send
/// <c>&lt;method&gt;+&lt;arg&gt; &lt;source&gt; name &lt;dest&gt;\0&lt;payload&gt;</c>, shut down the write side, read until EOF.
/// </summary>
public sealed class AdminClient(string socketPath, string source = "dom0")
{
    private readonly UnixDomainSocketEndPoint _endpoint = new(socketPath);

    public string SocketPath => socketPath;

    public async Task<AdminResponse> CallAsync(string method, string dest, string arg = "", string? payload = null, CancellationToken ct = default)
    {
        var request = new AdminRequest(method, arg, source, dest, payload is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(payload));
        return await CallRawAsync(request.Encode(), ct).ConfigureAwait(false);
    }

    /// <summary>Sends raw bytes (tests of framing) and decodes the single answer. An aborted connection is an <see cref="IOException"/>.</summary>
    public async Task<AdminResponse> CallRawAsync(byte[] request, CancellationToken ct = default)
    {
        using var socket = await ConnectAsync(ct).ConfigureAwait(false);
        await SendAllAsync(socket, request, ct).ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Send);
        // Read until EOF into a pooled buffer that grows: no per-call buffer or stream allocation, one copy into the decoded answer.
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    (buffer, bigger) = (bigger, buffer);
                    ArrayPool<byte>.Shared.Return(bigger);
                }
                int n;
                try
                {
                    n = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, ct).ConfigureAwait(false);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
                {
                    throw new IOException("qubesd aborted the connection without a response", e);
                }
                if (n == 0)
                    break;
                length += n;
            }
            if (length == 0)
                throw new IOException("qubesd closed the connection without a response");
            return ResponseDecoder.DecodeSingle(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>admin.Events: yields event frames (the first is connection-established) until the stream ends or <paramref name="ct"/> fires.</summary>
    public IAsyncEnumerable<AdminResponse> EventsAsync(string dest = "dom0", CancellationToken ct = default) => StreamAsync("admin.Events", dest, "", ct);

    /// <summary>
    /// A streaming call (admin.Events, admin.vm.Stats): yields event frames until the stream ends or <paramref name="ct"/>
    /// fires; a final ok or exception frame (a refused call) is yielded last.
    /// </summary>
    public async IAsyncEnumerable<AdminResponse> StreamAsync(string method, string dest, string arg = "", [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var socket = await ConnectAsync(ct).ConfigureAwait(false);
        await SendAllAsync(socket, new AdminRequest(method, arg, source, dest, ReadOnlyMemory<byte>.Empty).Encode(), ct).ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Send);
        var pending = new List<byte>();
        var buffer = new byte[8192];
        var eof = false;
        while (true)
        {
            while (pending.Count > 0 && ResponseDecoder.TryDecode(pending.ToArray(), eof, out var frame, out var used))
            {
                pending.RemoveRange(0, used);
                yield return frame!;
                if (frame is not AdminResponse.Event)
                    yield break;
            }
            if (eof)
                yield break;
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
                eof = true;
            else
                pending.AddRange(buffer.AsSpan(0, n));
        }
    }

    private async Task<Socket> ConnectAsync(CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(_endpoint, ct).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (data.Length > 0)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }
}
