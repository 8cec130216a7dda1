using System.Text;
using QubesActors.AdminApi.Wire;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Methods;

/// <summary>Upstream's <c>scope</c>: whether the call is about the system or about the destination qube.</summary>
public enum MethodScope
{
    Global,
    Local,
}

/// <summary>Upstream's <c>read</c>/<c>write</c>/<c>execute</c> flags (policy and audit use them).</summary>
public enum MethodAccess
{
    Read,
    Write,
    Execute,
}

/// <summary>Which destinations a method accepts; checked before the handler runs.</summary>
public enum DestinationKind
{
    /// <summary>Must be dom0: "expected destination to be AdminVM".</summary>
    AdminVm,
    /// <summary>dom0 or any qube (the handler decides what dom0 means).</summary>
    Any,
    /// <summary>Any qube but dom0: "expected destination to not be AdminVM".</summary>
    NotAdminVm,
}

/// <summary>Whether an argument or a payload must be, may be, or must not be present.</summary>
public enum Presence
{
    None,
    Optional,
    Required,
}

/// <summary>A handler's answer. Streaming methods write their frames themselves and return <see cref="Streamed"/>.</summary>
public abstract record AdminReply
{
    public sealed record Ok(string Content) : AdminReply
    {
        /// <summary>The whole ok frame, when the handler keeps it encoded (a cached answer is written as is).</summary>
        public byte[]? EncodedFrame { get; init; }
    }
    public sealed record Failed(QubesError Error) : AdminReply;
    public sealed record Streamed : AdminReply;

    public static AdminReply Empty { get; } = new Ok("");
}

public delegate Task<AdminReply> AdminHandler(AdminCall call, CancellationToken ct);

/// <summary>
/// One row of the method table: everything generic validation needs, and the handler.
/// <paramref name="AllowedArgs"/> (when set) is the closed set of arguments the method accepts.
/// </summary>
public sealed record AdminMethod(
    string Name,
    MethodScope Scope,
    MethodAccess Access,
    DestinationKind Destination,
    Presence Arg,
    Presence Payload,
    AdminHandler Handler,
    IReadOnlySet<string>? AllowedArgs = null,
    bool Streams = false)
{
    public bool Mutates => Access != MethodAccess.Read;
}

/// <summary>Writes frames to the connection (event streams).</summary>
public interface IFrameSink
{
    ValueTask WriteAsync(ReadOnlyMemory<byte> frame, CancellationToken ct);
}

/// <summary>
/// A call that passed generic validation: the method row, the caller, the resolved destination and the view it was checked
/// against; <paramref name="CommandTimeout"/> bounds the wait for a command's answer.
/// </summary>
public sealed record AdminCall(
    AdminMethod Method,
    AdminRequest Request,
    Caller Caller,
    QubeState Dest,
    QubesProtocol.CollectionSnapshot Snapshot,
    IQubesGateway Qubes,
    IFrameSink Frames,
    TimeSpan CommandTimeout)
{
    public string Arg => Request.Arg;
    public CollectionState State => Snapshot.State;
    public bool DestIsAdmin => Dest.Class == QubeClass.AdminVM;

    /// <summary>The payload as ASCII text; anything else is a <see cref="ProtocolError"/> (upstream decodes with <c>ascii, strict</c>).</summary>
    public string UntrustedPayloadAscii()
    {
        var span = Request.UntrustedPayload.Span;
        foreach (var b in span)
            if (b > 0x7f)
                throw new ProtocolError("payload is not ASCII");
        return Encoding.ASCII.GetString(span);
    }
}
