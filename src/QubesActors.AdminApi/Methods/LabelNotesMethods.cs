using System.Globalization;
using System.Text;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>admin.label.{List,Get,Index,Create,Remove} (dest dom0) and admin.vm.notes.{Get,Set}.</summary>
public static class LabelNotesMethods
{
    /// <summary>Upstream caps notes at 256,000 bytes (as UTF-8).</summary>
    public const int MaxNotesBytes = 256_000;

    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.label.List", DestinationKind.AdminVm, (call, _) => Ok(Lines(call.State.Labels.Values.Select(l => l.Name))), scope: MethodScope.Global),
        Read("admin.label.Get", DestinationKind.AdminVm, (call, _) => Ok(Find(call).Color), arg: Presence.Required, scope: MethodScope.Global),
        Read("admin.label.Index", DestinationKind.AdminVm, (call, _) => Ok(Find(call).Index.ToString(CultureInfo.InvariantCulture)),
            arg: Presence.Required, scope: MethodScope.Global),
        Write("admin.label.Create", DestinationKind.AdminVm, (call, ct) =>
            Send(call, new QubesProtocol.CreateLabel(call.Arg, call.UntrustedPayloadAscii(), call.Caller), ct),
            arg: Presence.Required, payload: Presence.Required, scope: MethodScope.Global),
        Write("admin.label.Remove", DestinationKind.AdminVm, (call, ct) =>
            Send(call, new QubesProtocol.RemoveLabel(call.Arg, call.Caller), ct), arg: Presence.Required, scope: MethodScope.Global),

        Read("admin.vm.notes.Get", DestinationKind.Any, (call, _) => Ok(call.Dest.Notes)),
        Write("admin.vm.notes.Set", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.SetNotes(call.Dest.Name, UntrustedNotes(call.Request.UntrustedPayload.Span), call.Caller), ct),
            payload: Presence.Optional),
    ];

    /// <summary>Labels are looked up by name only on the wire (an index is not a label name).</summary>
    private static Label Find(AdminCall call) =>
        call.State.Labels.Values.FirstOrDefault(l => l.Name == call.Arg) ?? throw new QubesLabelNotFoundError(call.Arg);

    /// <summary>Notes are UTF-8 text: at most <see cref="MaxNotesBytes"/>, no control characters but newline and tab.</summary>
    public static string UntrustedNotes(ReadOnlySpan<byte> untrusted)
    {
        if (untrusted.Length > MaxNotesBytes)
            throw new ProtocolError($"Notes too long: {untrusted.Length} bytes, at most {MaxNotesBytes}");
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(untrusted);
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolError("Notes are not valid UTF-8");
        }
        foreach (var c in text)
            if (char.IsControl(c) && c is not ('\n' or '\t'))
                throw new ProtocolError("Notes contain control characters");
        return text;
    }
}
