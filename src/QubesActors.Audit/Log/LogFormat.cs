using System.Globalization;
using System.Text;
using System.Text.Json;
using QubesActors.Audit.Journal;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Audit.Log;

public enum OutputFormat
{
    Table,
    Json,
    Jsonl,
    Csv,
}

/// <summary>
/// Writes events as they stream: nothing is buffered, so <c>--follow</c> and a million-event journal print the same
/// way. Terminal formats escape untrusted text (<see cref="TerminalText"/>); JSON escapes every control and non-ASCII
/// character itself.
/// </summary>
public sealed class LogFormat(OutputFormat format, TextWriter output)
{
    private bool _first = true;

    public void Begin()
    {
        if (format == OutputFormat.Csv)
            output.WriteLine("time,qube,event,cause,caller,cause_detail,details,stream,sequence_nr");
        else if (format == OutputFormat.Json)
            output.Write('[');
    }

    public void Write(AuditEvent e)
    {
        switch (format)
        {
            case OutputFormat.Table:
                output.WriteLine(TableLine(e));
                break;
            case OutputFormat.Jsonl:
                output.WriteLine(Json(e));
                break;
            case OutputFormat.Json:
                output.Write(_first ? "\n" : ",\n");
                output.Write(Json(e));
                break;
            case OutputFormat.Csv:
                output.WriteLine(CsvLine(e));
                break;
        }
        _first = false;
        output.Flush();
    }

    public void End()
    {
        if (format == OutputFormat.Json)
            output.WriteLine(_first ? "]" : "\n]");
        output.Flush();
    }

    /// <summary>time, qube, event, cause and caller, details: aligned like journalctl, one line however long.</summary>
    public static string TableLine(AuditEvent e) =>
        $"{AuditDetails.FormatTime(e.Time)}  {TerminalText.Escape(e.Qube.Length == 0 ? "-" : e.Qube),-14}  {e.Name,-28}  " +
        $"{TerminalText.Escape(Cause(e)),-34}  {TerminalText.Escape(e.Details)}";

    /// <summary><c>admin by dom0 (admin.vm.Start)</c>, <c>supervisor (restart 2)</c>.</summary>
    public static string Cause(AuditEvent e) =>
        e.CauseKind + (e.Caller is null ? "" : $" by {e.Caller}") + (e.CauseDetail is null ? "" : $" ({e.CauseDetail})");

    /// <summary>What <c>--grep</c> searches: the unescaped text of every column.</summary>
    public static string SearchText(AuditEvent e) => $"{e.Qube} {e.Name} {Cause(e)} {e.Details}";

    public static string Json(AuditEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonWriterOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("ordering", e.Ordering);
            w.WriteString("time", AuditDetails.FormatTime(e.Time));
            w.WriteString("qube", e.Qube);
            w.WriteStartArray("qubes");
            foreach (var q in e.Qubes)
                w.WriteStringValue(q);
            w.WriteEndArray();
            w.WriteString("event", e.Name);
            w.WriteString("manifest", e.Manifest);
            w.WriteStartArray("kinds");
            foreach (var k in e.Kinds)
                w.WriteStringValue(k);
            w.WriteEndArray();
            w.WriteStartObject("cause");
            w.WriteString("kind", e.CauseKind);
            w.WriteString("caller", e.Caller);
            w.WriteString("detail", e.CauseDetail);
            w.WriteEndObject();
            w.WriteString("details", e.Details);
            w.WriteString("stream", e.PersistenceId);
            w.WriteNumber("sequence_nr", e.SequenceNr);
            // The event as stored (snake_case, the runtime's codec), for tools that want every field.
            w.WritePropertyName("data");
            using (var data = JsonDocument.Parse(EventCodec.Encode(e.Event)))
                data.RootElement.WriteTo(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Readable JSON (quotes, '+' and non-ASCII letters as themselves); control characters, C0 and C1 alike, are
    /// still written as \uXXXX by this encoder, so no escape sequence survives into a terminal.
    /// </summary>
    private static readonly JsonWriterOptions JsonWriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string CsvLine(AuditEvent e) => string.Join(',',
        AuditDetails.FormatTime(e.Time), Csv(e.Qube), e.Name, e.CauseKind, Csv(e.Caller), Csv(e.CauseDetail), Csv(e.Details),
        Csv(e.PersistenceId), e.SequenceNr.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// RFC 4180 quoting over terminal-escaped text (so a field never spans lines), and a leading <c>'</c> before
    /// <c>= + - @</c> so a spreadsheet does not run an untrusted value as a formula.
    /// </summary>
    public static string Csv(string? untrusted)
    {
        var text = TerminalText.Escape(untrusted);
        if (text.Length > 0 && text[0] is '=' or '+' or '-' or '@')
            text = "'" + text;
        return text.IndexOfAny([',', '"', ' ']) < 0 ? text : "\"" + text.Replace("\"", "\"\"") + "\"";
    }
}
