using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace QubesActors.Sandbox.Qrexec;

/// <summary>The frame types of the qrexec channel (docs/qrexec.md; Guest/src/qrexec-frame.h is the C side).</summary>
public enum QrexecFrameType : byte
{
    /// <summary>Client: <c>TARGET \0 SERVICE[+ARG]</c>; the first frame, once.</summary>
    Request = 1,
    /// <summary>Client: bytes for the service's stdin.</summary>
    Stdin = 2,
    /// <summary>Client: the service's stdin ends (empty payload).</summary>
    StdinEof = 3,
    /// <summary>Server: bytes the service wrote to stdout.</summary>
    Stdout = 4,
    /// <summary>Server: bytes the service wrote to stderr.</summary>
    Stderr = 5,
    /// <summary>Server: the service's exit code (4 bytes, big-endian); the last frame.</summary>
    Exit = 6,
    /// <summary>Server: the call was not allowed or could not run (a UTF-8 message); the last frame.</summary>
    Refused = 7,
}

public readonly record struct QrexecFrame(QrexecFrameType Type, ReadOnlyMemory<byte> Payload);

/// <summary>A call as its caller asked for it (still untrusted as a wish, but well-formed).</summary>
public sealed record QrexecRequest(string Target, string Service, string Argument)
{
    public string FullName => Argument.Length == 0 ? Service : $"{Service}+{Argument}";
}

/// <summary>Malformed bytes on a qrexec channel: the connection is closed with this message.</summary>
public sealed class QrexecProtocolException(string message) : Exception(message);

/// <summary>
/// The qrexec channel's framing: a 1-byte type, a 4-byte big-endian payload length, the payload. Every length is
/// bounded before anything is allocated; which side may send which frame is checked. Pure, apart from the stream reads.
/// </summary>
public static partial class QrexecProtocol
{
    public const int HeaderLength = 5;
    public const int MaxPayload = 65536;
    public const int MaxTarget = 64;
    public const int MaxService = 1024;
    public const int MaxServiceName = 64;
    public const int MaxRefused = 1024;

    /// <summary>The largest payload <paramref name="type"/> may carry, sent by a client (<paramref name="fromClient"/>) or the server; -1 if that side may not send it.</summary>
    public static int MaxLength(QrexecFrameType type, bool fromClient) => (type, fromClient) switch
    {
        (QrexecFrameType.Request, true) => MaxTarget + 1 + MaxService,
        (QrexecFrameType.Stdin, true) => MaxPayload,
        (QrexecFrameType.StdinEof, true) => 0,
        (QrexecFrameType.Stdout or QrexecFrameType.Stderr, false) => MaxPayload,
        (QrexecFrameType.Exit, false) => 4,
        (QrexecFrameType.Refused, false) => MaxRefused,
        _ => -1,
    };

    public static byte[] Encode(QrexecFrameType type, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxPayload)
            throw new ArgumentException($"a frame carries at most {MaxPayload} bytes", nameof(payload));
        var frame = new byte[HeaderLength + payload.Length];
        frame[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame.AsSpan(HeaderLength));
        return frame;
    }

    public static byte[] EncodeExit(int code)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(payload, code);
        return Encode(QrexecFrameType.Exit, payload);
    }

    public static byte[] EncodeRefused(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        return Encode(QrexecFrameType.Refused, bytes.AsSpan(0, Math.Min(bytes.Length, MaxRefused)));
    }

    public static byte[] EncodeRequest(string target, string serviceAndArgument) =>
        Encode(QrexecFrameType.Request, Encoding.UTF8.GetBytes(target + "\0" + serviceAndArgument));

    public static int DecodeExit(ReadOnlySpan<byte> payload) =>
        payload.Length == 4 ? BinaryPrimitives.ReadInt32BigEndian(payload) : throw new QrexecProtocolException("an exit frame carries 4 bytes");

    /// <summary>
    /// Reads one frame. Null on a clean end of stream before a frame; a <see cref="QrexecProtocolException"/> for an
    /// unknown type, a frame the other side may not send, a length over its bound or a stream cut inside a frame.
    /// </summary>
    public static async Task<QrexecFrame?> ReadAsync(Stream stream, bool fromClient, CancellationToken ct)
    {
        var header = new byte[HeaderLength];
        var got = await ReadFullyAsync(stream, header, ct).ConfigureAwait(false);
        if (got == 0)
            return null;
        if (got < HeaderLength)
            throw new QrexecProtocolException("the stream ended inside a frame header");
        var type = (QrexecFrameType)header[0];
        var untrustedLength = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1));
        var max = Enum.IsDefined(type) ? MaxLength(type, fromClient) : -1;
        if (max < 0)
            throw new QrexecProtocolException($"unexpected frame type {header[0]}");
        if (untrustedLength > (uint)max)
            throw new QrexecProtocolException($"frame of type {type} too long ({untrustedLength} bytes, at most {max})");
        if (type == QrexecFrameType.Exit && untrustedLength != 4)
            throw new QrexecProtocolException("an exit frame carries 4 bytes");
        var payload = new byte[untrustedLength];
        if (await ReadFullyAsync(stream, payload, ct).ConfigureAwait(false) < payload.Length)
            throw new QrexecProtocolException("the stream ended inside a frame");
        return new QrexecFrame(type, payload);
    }

    private static async Task<int> ReadFullyAsync(Stream stream, Memory<byte> buffer, CancellationToken ct)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    /// <summary>
    /// Parses and validates a request payload: <c>TARGET \0 SERVICE[+ARG]</c>. The target is a qube name or a
    /// policy token (<c>@default</c>, <c>@dispvm:NAME</c>, ...); the service name is letters, digits and <c>._-</c>;
    /// the argument (after the first <c>+</c>) letters, digits and <c>._+-</c>, as Qubes allows.
    /// </summary>
    public static QrexecRequest ParseRequest(ReadOnlySpan<byte> untrustedPayload)
    {
        var zero = untrustedPayload.IndexOf((byte)0);
        if (zero < 0)
            throw new QrexecProtocolException("the request has no target");
        var untrustedTarget = untrustedPayload[..zero];
        var untrustedService = untrustedPayload[(zero + 1)..];
        if (untrustedTarget.Length is 0 or > MaxTarget || !untrustedTarget.ToArray().All(IsTargetByte))
            throw new QrexecProtocolException("invalid target in the request");
        if (untrustedService.Length is 0 or > MaxService)
            throw new QrexecProtocolException("invalid service in the request");
        var full = Encoding.ASCII.GetString(untrustedService);
        var plus = full.IndexOf('+');
        var service = plus < 0 ? full : full[..plus];
        var argument = plus < 0 ? "" : full[(plus + 1)..];
        if (!ServiceName().IsMatch(service) || service.Length > MaxServiceName || !ServiceArgument().IsMatch(argument))
            throw new QrexecProtocolException("invalid service in the request");
        return new QrexecRequest(Encoding.ASCII.GetString(untrustedTarget), service, argument);
    }

    private static bool IsTargetByte(byte b) => b is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9'
        or (byte)'_' or (byte)'.' or (byte)'-' or (byte)'@' or (byte)':';

    // \z, not $: $ also matches before a final newline.
    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]*\z")]
    private static partial Regex ServiceName();

    [GeneratedRegex(@"^[A-Za-z0-9_.+-]*\z")]
    private static partial Regex ServiceArgument();
}
