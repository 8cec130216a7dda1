namespace QubesActors.Sandbox.Qrexec;

/// <summary>Writes whole frames to a connection, one at a time (the stdout and stderr relays share it).</summary>
internal sealed class FrameWriter(Stream connection)
{
    private readonly SemaphoreSlim _lock = new(1, 1);

    public async Task WriteAsync(byte[] frame, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await connection.WriteAsync(frame, ct).ConfigureAwait(false);
            await connection.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }
}

/// <summary>A write-only stream whose bytes go out as frames of one type (stdout or stderr of a service).</summary>
internal sealed class FramingStream(FrameWriter writer, QrexecFrameType type) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        for (var at = 0; at < buffer.Length; at += QrexecProtocol.MaxPayload)
            await writer.WriteAsync(QrexecProtocol.Encode(type, buffer.Span.Slice(at, Math.Min(QrexecProtocol.MaxPayload, buffer.Length - at))), ct)
                .ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();
}
