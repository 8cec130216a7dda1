using System.Text;

namespace QubesActors.AdminApi.Wire;

/// <summary>
/// One framed call as qubesd reads it (docs/qubes-semantics.md §6.1):
/// <c>&lt;method&gt;+&lt;arg&gt; &lt;source&gt; &lt;dest-type&gt; &lt;dest&gt;\0&lt;payload&gt;</c>.
/// Everything here is untrusted until the method table has validated it; the destination is already
/// normalised (<c>keyword adminvm</c> → <c>dom0</c>).
/// </summary>
public sealed record AdminRequest(string Method, string Arg, string Source, string Dest, ReadOnlyMemory<byte> UntrustedPayload)
{
    /// <summary>Upstream's <c>'{method}+{arg} {source} name {dest}\0{payload}'</c>, as <c>qubesd_call</c> sends it.</summary>
    public byte[] Encode()
    {
        var header = Encoding.ASCII.GetBytes($"{Method}+{Arg} {Source} name {Dest}");
        var bytes = new byte[header.Length + 1 + UntrustedPayload.Length];
        header.CopyTo(bytes, 0);
        bytes[header.Length] = 0;
        UntrustedPayload.Span.CopyTo(bytes.AsSpan(header.Length + 1));
        return bytes;
    }
}

/// <summary>Why a request could not be framed. The connection is aborted without any response.</summary>
public sealed record FramingError(string Reason);

/// <summary>Pure parsing of a complete request (the bytes up to the client's EOF).</summary>
public static class RequestFraming
{
    /// <summary>qubesd refuses (by closing the connection) a request longer than this.</summary>
    public const int MaxRequestBytes = 65536;

    public const string AdminVmKeyword = "adminvm";

    public static bool TryParse(ReadOnlySpan<byte> untrusted, out AdminRequest? request, out FramingError? error)
    {
        request = null;
        error = null;
        if (untrusted.Length > MaxRequestBytes)
            return Fail($"request longer than {MaxRequestBytes} bytes", out error);
        var nul = untrusted.IndexOf((byte)0);
        if (nul < 0)
            return Fail("no NUL after the header", out error);
        var header = untrusted[..nul];
        foreach (var b in header)
            if (b is < 0x20 or > 0x7e)
                return Fail("header is not printable ASCII", out error);
        // Split on single spaces into exactly four fields: method+arg, source, dest-type, dest.
        var fields = Encoding.ASCII.GetString(header).Split(' ');
        if (fields.Length != 4)
            return Fail($"expected 4 header fields, got {fields.Length}", out error);
        var (methodArg, source, destType, dest) = (fields[0], fields[1], fields[2], fields[3]);
        if (destType == "keyword" && dest == AdminVmKeyword)
            (destType, dest) = ("name", "dom0");
        if (destType != "name")
            return Fail($"got {destType} destination type, while only explicit name supported", out error);
        var plus = methodArg.IndexOf('+');
        var method = plus < 0 ? methodArg : methodArg[..plus];
        var arg = plus < 0 ? "" : methodArg[(plus + 1)..];
        request = new AdminRequest(method, arg, source, dest, untrusted[(nul + 1)..].ToArray());
        return true;
    }

    private static bool Fail(string reason, out FramingError? error)
    {
        error = new FramingError(reason);
        return false;
    }
}
