using System.Text;

namespace QubesActors.AdminApi.Wire;

/// <summary>
/// Response frames (docs/qubes-semantics.md §6.1). Each starts with a type byte and a zero byte:
/// <c>0x30 0x00 &lt;content&gt;</c> ok, <c>0x31 0x00 &lt;subject&gt;\0&lt;event&gt;\0(&lt;k&gt;\0&lt;v&gt;\0)*\0</c> event,
/// <c>0x32 0x00 &lt;Class&gt;\0&lt;traceback&gt;\0&lt;message&gt;\0</c> exception.
/// </summary>
public static class AdminFrames
{
    public const byte Ok = 0x30;
    public const byte Event = 0x31;
    public const byte Exception = 0x32;

    /// <summary>Encodes straight into the frame: one allocation and one pass, however long the content (a List of 1,000 qubes is ~70 KB).</summary>
    public static byte[] EncodeOk(string content)
    {
        var bytes = new byte[2 + Encoding.UTF8.GetByteCount(content)];
        bytes[0] = Ok;
        Encoding.UTF8.GetBytes(content, bytes.AsSpan(2));
        return bytes;
    }

    public static byte[] EncodeOk(ReadOnlySpan<byte> content)
    {
        var bytes = new byte[2 + content.Length];
        bytes[0] = Ok;
        content.CopyTo(bytes.AsSpan(2));
        return bytes;
    }

    /// <summary>The traceback is always empty: qubesd sends it only in debug mode, and we never leak internals.</summary>
    public static byte[] EncodeException(string className, string message, string traceback = "") =>
        Frame(Exception, [className, traceback, message]);

    public static byte[] EncodeEvent(string subject, string eventName, IEnumerable<KeyValuePair<string, string>> arguments)
    {
        var parts = new List<string> { subject, eventName };
        foreach (var (key, value) in arguments)
        {
            parts.Add(key);
            parts.Add(value);
        }
        // The argument list ends with an extra NUL (an empty key).
        var frame = Frame(Event, parts);
        Array.Resize(ref frame, frame.Length + 1);
        return frame;
    }

    private static byte[] Frame(byte type, IEnumerable<string> zeroTerminated)
    {
        using var stream = new MemoryStream();
        stream.WriteByte(type);
        stream.WriteByte(0);
        foreach (var part in zeroTerminated)
        {
            // A NUL inside a field would shift every field after it; the wire has no escaping, so refuse.
            if (part.Contains('\0'))
                throw new ArgumentException("a response field cannot contain NUL", nameof(zeroTerminated));
            var bytes = Encoding.UTF8.GetBytes(part);
            stream.Write(bytes);
            stream.WriteByte(0);
        }
        return stream.ToArray();
    }
}

/// <summary>A decoded response, as the client sees it.</summary>
public abstract record AdminResponse
{
    public sealed record Ok(byte[] Content) : AdminResponse
    {
        public string Text => Encoding.UTF8.GetString(Content);
        public override string ToString() => $"Ok({Text})";
    }

    public sealed record Error(string ClassName, string Traceback, string Message) : AdminResponse
    {
        public override string ToString() => $"{ClassName}: {Message}";
    }

    public sealed record Event(string Subject, string Name, IReadOnlyList<KeyValuePair<string, string>> Arguments) : AdminResponse
    {
        public string? Argument(string key) => Arguments.FirstOrDefault(a => a.Key == key).Value;
        public override string ToString() => $"{Subject}: {Name}({string.Join(", ", Arguments.Select(a => $"{a.Key}={a.Value}"))})";
    }

    public bool IsOk => this is Ok;
    public string OkText => this is Ok ok ? ok.Text : throw new InvalidOperationException($"expected an ok response, got {this}");
}

/// <summary>Decodes frames from the bytes a client has received.</summary>
public static class ResponseDecoder
{
    /// <summary>
    /// Decodes one frame at the start of <paramref name="data"/>. Returns false when more bytes are needed
    /// (an ok frame is complete only at EOF: pass <paramref name="atEof"/>). Throws on a malformed frame.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, bool atEof, out AdminResponse? response, out int consumed)
    {
        response = null;
        consumed = 0;
        if (data.Length < 2)
        {
            if (atEof)
                throw new InvalidDataException(data.Length == 0 ? "connection closed without a response" : "truncated frame header");
            return false;
        }
        if (data[1] != 0)
            throw new InvalidDataException($"frame type byte 0x{data[0]:x2} not followed by a zero byte");
        var body = data[2..];
        switch (data[0])
        {
            case AdminFrames.Ok:
                if (!atEof)
                    return false;
                response = new AdminResponse.Ok(body.ToArray());
                consumed = data.Length;
                return true;
            case AdminFrames.Exception:
            {
                if (!TryFields(body, 3, out var fields, out var length))
                    return atEof ? throw new InvalidDataException("truncated exception frame") : false;
                response = new AdminResponse.Error(fields[0], fields[1], fields[2]);
                consumed = 2 + length;
                return true;
            }
            case AdminFrames.Event:
            {
                // subject, event, then key/value pairs until an empty key.
                var offset = 0;
                var parts = new List<string>();
                while (true)
                {
                    var nul = body[offset..].IndexOf((byte)0);
                    if (nul < 0)
                        return atEof ? throw new InvalidDataException("truncated event frame") : false;
                    var part = Encoding.UTF8.GetString(body.Slice(offset, nul));
                    offset += nul + 1;
                    if (parts.Count >= 2 && parts.Count % 2 == 0 && part.Length == 0)
                        break;
                    parts.Add(part);
                }
                var args = new List<KeyValuePair<string, string>>();
                for (var i = 2; i + 1 < parts.Count; i += 2)
                    args.Add(KeyValuePair.Create(parts[i], parts[i + 1]));
                if (parts.Count % 2 != 0)
                    throw new InvalidDataException("event frame with a key but no value");
                response = new AdminResponse.Event(parts[0], parts[1], args);
                consumed = 2 + offset;
                return true;
            }
            default:
                throw new InvalidDataException($"unknown frame type 0x{data[0]:x2}");
        }
    }

    private static bool TryFields(ReadOnlySpan<byte> body, int count, out string[] fields, out int length)
    {
        fields = new string[count];
        length = 0;
        for (var i = 0; i < count; i++)
        {
            var nul = body[length..].IndexOf((byte)0);
            if (nul < 0)
                return false;
            fields[i] = Encoding.UTF8.GetString(body.Slice(length, nul));
            length += nul + 1;
        }
        return true;
    }

    /// <summary>Decodes a complete single response (ok or exception) read until EOF.</summary>
    public static AdminResponse DecodeSingle(ReadOnlySpan<byte> data)
    {
        if (!TryDecode(data, atEof: true, out var response, out _) || response is null)
            throw new InvalidDataException("incomplete response");
        return response;
    }
}
