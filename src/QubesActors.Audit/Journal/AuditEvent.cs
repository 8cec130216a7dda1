using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;
using QubesActors.Core.Events;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;

namespace QubesActors.Audit.Journal;

/// <summary>
/// One journal event as the viewer shows it. <see cref="Qube"/> is the qube the stream belongs to (its name when it was
/// written), empty for the collection's stream; a policy decision names its source there and lists source and target
/// in <see cref="Qubes"/>, so <c>--qube</c> finds it from either side.
/// </summary>
public sealed record AuditEvent(
    long Ordering,
    string PersistenceId,
    long SequenceNr,
    string Manifest,
    string Qube,
    ImmutableArray<string> Qubes,
    ImmutableArray<string> Kinds,
    DomainEvent Event)
{
    /// <summary>The manifest without its version: <c>qube.started</c>.</summary>
    public string Name => Manifest.EndsWith(".v1", StringComparison.Ordinal) ? Manifest[..^3] : Manifest;

    public DateTimeOffset Time => Event.Time;

    public string CauseKind => Event.Cause.Kind;

    /// <summary>Who: the admin caller, or for a policy decision the client that asked.</summary>
    public string? Caller => Event.Cause.Caller ?? (Event as PolicyDecisionRecorded)?.Caller;

    public string? CauseDetail => Event.Cause.Detail;

    public string Details => AuditDetails.Of(Event);
}

/// <summary>The one-line summary of an event's own fields (time, cause and chain link are shown elsewhere).</summary>
public static class AuditDetails
{
    private static readonly HashSet<string> Envelope = ["time", "cause", "prev_hash"];

    public static string Of(DomainEvent e) => e switch
    {
        // The argument keeps its leading '+' (qrexec's SERVICE+ARG); an empty requested target is @default.
        PolicyDecisionRecorded p => $"{p.Service}{p.Argument} {p.Source} -> {(p.RequestedTarget.Length == 0 ? "@default" : p.RequestedTarget)}: {p.Result}" +
                                    (p.Target is null ? "" : $" target={p.Target}") + (p.Reason is null ? "" : $" ({p.Reason})"),
        QubePropertySet s => $"{s.Property}={s.Value}",
        QubeFeatureSet f => $"{f.Feature}={f.Value}",
        GlobalPropertySet g => $"{g.Property}={g.Value}",
        _ => Generic(e),
    };

    /// <summary>Every other event: its payload fields as key=value, nested values as compact JSON.</summary>
    private static string Generic(DomainEvent e)
    {
        using var doc = JsonDocument.Parse(EventCodec.Encode(e));
        var sb = new StringBuilder();
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (Envelope.Contains(property.Name))
                continue;
            if (sb.Length > 0)
                sb.Append(' ');
            sb.Append(property.Name).Append('=');
            sb.Append(property.Value.ValueKind switch
            {
                JsonValueKind.String => property.Value.GetString(),
                JsonValueKind.Number => property.Value.GetRawText(),
                JsonValueKind.True or JsonValueKind.False => property.Value.GetRawText(),
                // Raw JSON would keep \u escapes; re-serialized unescaped it reads as typed, and is escaped for the terminal later.
                _ => JsonSerializer.Serialize(property.Value, RelaxedJson),
            });
        }
        return sb.ToString();
    }

    private static readonly JsonSerializerOptions RelaxedJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
