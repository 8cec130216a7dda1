using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using QubesActors.AdminApi.Wire;

namespace QubesActors.Cli.Infrastructure;

/// <summary>
/// Any call read frame by frame: event frames are yielded as they arrive (admin.Events, admin.vm.Stats), a final
/// ok or exception frame ends the stream. <c>qvm call</c> and <c>qvm events</c> use it.
/// </summary>
internal static class FrameStream
{
    public static async IAsyncEnumerable<AdminResponse> ReadAsync(string socketPath, string method, string dest, string arg, string? payload,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var _ = socket;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
            var request = new AdminRequest(method, arg, "dom0", dest, payload is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(payload)).Encode();
            var sent = 0;
            while (sent < request.Length)
                sent += await socket.SendAsync(request.AsMemory(sent), SocketFlags.None, ct).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException e)
        {
            throw new QubesdUnreachableException(socketPath, e);
        }

        var pending = new List<byte>();
        var buffer = new byte[8192];
        var eof = false;
        var any = false;
        while (true)
        {
            while (pending.Count > 0 && ResponseDecoder.TryDecode(pending.ToArray(), eof, out var frame, out var used))
            {
                pending.RemoveRange(0, used);
                any = true;
                yield return frame!;
                if (frame is not AdminResponse.Event)
                    yield break;
            }
            if (eof)
            {
                if (!any)
                    throw new IOException("qubesd closed the connection without a response");
                yield break;
            }
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                throw new IOException("qubesd aborted the connection", e);
            }
            if (n == 0)
                eof = true;
            else
                pending.AddRange(buffer.AsSpan(0, n));
        }
    }
}
