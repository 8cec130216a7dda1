using System.Net.Sockets;
using System.Text;

namespace QubesActors.Sandbox.Qrexec;

/// <summary>
/// The calling side of the channel protocol, for dom0 tools (the dom0 socket of <see cref="QrexecService.ListenDom0"/>)
/// and tests; inside a qube the same is qrexec-client-vm. Returns the service's exit code, or 126 with
/// "Request refused: ..." written to <paramref name="stderr"/>.
/// </summary>
public static class QrexecClient
{
    public static async Task<int> CallAsync(string socketPath, string target, string serviceAndArgument, Stream stdin, Stream stdout, Stream stderr,
        CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var writer = new FrameWriter(stream);
        await writer.WriteAsync(QrexecProtocol.EncodeRequest(target, serviceAndArgument), ct).ConfigureAwait(false);
        using var sending = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var send = SendStdinAsync(stdin, writer, sending.Token);
        try
        {
            while (true)
            {
                var frame = await QrexecProtocol.ReadAsync(stream, fromClient: false, ct).ConfigureAwait(false)
                            ?? throw new IOException("qrexec: the connection closed before the service ended");
                switch (frame.Type)
                {
                    case QrexecFrameType.Stdout:
                        await stdout.WriteAsync(frame.Payload, ct).ConfigureAwait(false);
                        break;
                    case QrexecFrameType.Stderr:
                        await stderr.WriteAsync(frame.Payload, ct).ConfigureAwait(false);
                        break;
                    case QrexecFrameType.Exit:
                        return QrexecProtocol.DecodeExit(frame.Payload.Span);
                    default:
                        await stderr.WriteAsync(Encoding.UTF8.GetBytes($"Request refused: {Encoding.UTF8.GetString(frame.Payload.Span)}\n"), ct).ConfigureAwait(false);
                        return QrexecService.RefusedExitCode;
                }
            }
        }
        finally
        {
            await sending.CancelAsync().ConfigureAwait(false);
            try
            {
                await send.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
    }

    private static async Task SendStdinAsync(Stream stdin, FrameWriter writer, CancellationToken ct)
    {
        var buffer = new byte[QrexecProtocol.MaxPayload];
        int n;
        while ((n = await stdin.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            await writer.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.Stdin, buffer.AsSpan(0, n)), ct).ConfigureAwait(false);
        await writer.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.StdinEof, []), ct).ConfigureAwait(false);
    }
}
