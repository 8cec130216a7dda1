using System.Text;

namespace QubesActors.Cli.Infrastructure;

/// <summary>A read-only stream: <paramref name="prefix"/>, then <paramref name="rest"/> (if any) until its end.</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream? rest) : ReadOnlyStreamBase
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (!_prefix.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }
        return rest is null ? 0 : await rest.ReadAsync(buffer, ct).ConfigureAwait(false);
    }
}

/// <summary>
/// Reads that can be abandoned: a terminal's stdin does not honour cancellation, and the call must not wait for a
/// key press once the command has ended (the abandoned read's bytes are lost, as when qvm-run ends its copier).
/// </summary>
internal sealed class AbandonableStream(Stream inner) : ReadOnlyStreamBase
{
    private Task<int>? _pending;
    private byte[] _pendingBuffer = [];

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        // A read of our own buffer, so an abandoned read never writes into the caller's memory later.
        if (_pending is null)
        {
            _pendingBuffer = new byte[buffer.Length];
            _pending = inner.ReadAsync(_pendingBuffer, CancellationToken.None).AsTask();
        }
        var n = await _pending.WaitAsync(ct).ConfigureAwait(false);
        _pending = null;
        _pendingBuffer.AsSpan(0, n).CopyTo(buffer.Span);
        return n;
    }
}

/// <summary>Bytes written as UTF-8 text to a writer (in-process runs without raw standard streams).</summary>
internal sealed class TextWriterStream(TextWriter writer) : WriteOnlyStreamBase
{
    private readonly Decoder _decoder = new UTF8Encoding(false).GetDecoder();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var chars = new char[_decoder.GetCharCount(buffer, flush: false)];
        var n = _decoder.GetChars(buffer, chars, flush: false);
        writer.Write(chars, 0, n);
        writer.Flush();
    }
}

/// <summary>
/// qvm-run's --filter-escape-chars: what the qube writes reaches a terminal with every byte but printable ASCII, tab,
/// CR and LF replaced by '_', so a qube cannot send escape sequences to dom0's terminal.
/// </summary>
internal sealed class EscapeFilterStream(Stream inner) : WriteOnlyStreamBase
{
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var copy = buffer.ToArray();
        for (var i = 0; i < copy.Length; i++)
            if (copy[i] is not ((>= 0x20 and < 0x7f) or (byte)'\n' or (byte)'\t' or (byte)'\r'))
                copy[i] = (byte)'_';
        inner.Write(copy);
        inner.Flush();
    }
}

/// <summary>Discards everything but remembers the last write: the "Request refused" line of a call whose output is not passed.</summary>
internal sealed class LastWriteStream : WriteOnlyStreamBase
{
    public byte[] Last { get; private set; } = [];

    public override void Write(ReadOnlySpan<byte> buffer) => Last = buffer.ToArray();
}

internal abstract class ReadOnlyStreamBase : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

internal abstract class WriteOnlyStreamBase : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public abstract override void Write(ReadOnlySpan<byte> buffer);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }
}
