using System.Text;
using System.Text.Json;
using QubesActors.Audit.Journal;
using QubesActors.Audit.Log;
using QubesActors.Core.Model;

namespace QubesActors.Audit.Timeline;

/// <summary>
/// What <c>qubes-audit show</c> prints: plain lines (untrusted text through <see cref="TerminalText"/>, events as
/// <c>log</c> prints them) or one JSON document (the encoder writes every control character as \uXXXX).
/// </summary>
public static class ShowFormat
{
    private static readonly JsonWriterOptions JsonOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = true,
    };

    public static void WriteHistory(TextWriter output, QubeHistory history)
    {
        var name = TerminalText.Escape(history.Name);
        for (var i = 0; i < history.Lives.Length; i++)
        {
            var life = history.Lives[i];
            if (i > 0)
                output.WriteLine();
            output.WriteLine($"{name}  life {i + 1} of {history.Lives.Length}  {life.Class}  stream {TerminalText.Escape(life.PersistenceId)}");
            output.WriteLine($"  created  {AuditDetails.FormatTime(life.Created)}  {TerminalText.Escape(LogFormat.Cause(life.Events[0]))}");
            output.WriteLine($"  removed  {(life.Removed is { } removed ? AuditDetails.FormatTime(removed) : "-")}");
            var c = life.Counts;
            output.WriteLine($"  summary  {c.Starts} starts, {c.Crashes} crashes, {c.RestartsScheduled} restarts scheduled, " +
                             $"{c.RestartLimitHits} restart limit hits, {c.StartFailures} failed starts, " +
                             $"{c.PolicyDecisions} policy decisions ({c.Denials} denied as source)");
            output.WriteLine();
            output.WriteLine($"  {"POWER",-10}{"FROM",-26}{"TO",-26}DURATION");
            foreach (var span in life.Spans)
                output.WriteLine($"  {span.State.Wire(),-10}{AuditDetails.FormatTime(span.Start),-26}" +
                                 $"{(span.Open ? "now" : AuditDetails.FormatTime(span.End)),-26}{PowerSpan.FormatDuration(span.ShownDuration)}{(span.Open ? " (so far)" : "")}");
            var restarts = life.RestartEvents.ToList();
            if (restarts.Count > 0)
            {
                output.WriteLine();
                output.WriteLine("  restarts and failures:");
                foreach (var e in restarts)
                    output.WriteLine("  " + LogFormat.TableLine(e));
            }
            if (life.Anomalies.Length > 0)
            {
                output.WriteLine();
                output.WriteLine("  events the model refused (journal damaged or edited?):");
                foreach (var a in life.Anomalies)
                    output.WriteLine("  " + TerminalText.Escape(a));
            }
            output.WriteLine();
            output.WriteLine("  events:");
            foreach (var e in life.Events)
                output.WriteLine("  " + LogFormat.TableLine(e));
        }
        output.Flush();
    }

    public static void WriteHistoryJson(TextWriter output, QubeHistory history)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("qube", history.Name);
            w.WriteStartArray("lives");
            foreach (var life in history.Lives)
            {
                w.WriteStartObject();
                w.WriteString("stream", life.PersistenceId);
                w.WriteString("uuid", life.Uuid.ToString());
                w.WriteString("class", life.Class.ToString());
                w.WriteString("created", AuditDetails.FormatTime(life.Created));
                if (life.Removed is { } removed)
                    w.WriteString("removed", AuditDetails.FormatTime(removed));
                else
                    w.WriteNull("removed");
                var c = life.Counts;
                w.WriteStartObject("counts");
                w.WriteNumber("starts", c.Starts);
                w.WriteNumber("crashes", c.Crashes);
                w.WriteNumber("restarts_scheduled", c.RestartsScheduled);
                w.WriteNumber("restart_limit_hits", c.RestartLimitHits);
                w.WriteNumber("start_failures", c.StartFailures);
                w.WriteNumber("policy_decisions", c.PolicyDecisions);
                w.WriteNumber("denied_as_source", c.Denials);
                w.WriteEndObject();
                w.WriteStartArray("spans");
                foreach (var span in life.Spans)
                {
                    w.WriteStartObject();
                    w.WriteString("state", span.State.Wire());
                    w.WriteString("start", AuditDetails.FormatTime(span.Start));
                    w.WriteString("end", AuditDetails.FormatTime(span.End));
                    w.WriteBoolean("open", span.Open);
                    w.WriteNumber("duration_ms", (long)span.ShownDuration.TotalMilliseconds);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("anomalies");
                foreach (var a in life.Anomalies)
                    w.WriteStringValue(a);
                w.WriteEndArray();
                w.WriteStartArray("events");
                foreach (var e in life.Events)
                    using (var doc = JsonDocument.Parse(LogFormat.Json(e)))
                        doc.RootElement.WriteTo(w);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
        output.Flush();
    }

    public static void WriteStateAt(TextWriter output, QubeStateAt at)
    {
        var q = at.State;
        output.WriteLine($"{TerminalText.Escape(at.Name)} at {AuditDetails.FormatTime(at.At)}  life {at.Life} of {at.Lives}  {q.Class}  " +
                         $"stream {TerminalText.Escape(at.PersistenceId)}  created {AuditDetails.FormatTime(at.Created)}");
        output.WriteLine($"  {"power",-12}{q.Power.Wire()}{(q.StartTime is { } started && q.Power.IsActive() ? $" since {AuditDetails.FormatTime(started)}" : "")}" +
                         (q.Failed ? $"  FAILED: {TerminalText.Escape(q.FailedReason)}" : ""));
        output.WriteLine($"  {"label",-12}{TerminalText.Escape(q.Label)}");
        var netvm = at.Property("netvm");
        if (netvm is not null)
            output.WriteLine($"  {"netvm",-12}{Value(netvm)} ({TerminalText.Escape(netvm.Source)})" +
                             (q.Power.IsActive() ? $"; connected to {(q.ConnectedNetVm is { } n ? TerminalText.Escape(n) : "none")}" : ""));
        output.WriteLine($"  {"firewall",-12}{(q.Firewall is { } rules ? $"{rules.Length} rules" : "default (accept all)")}");
        if (q.Firewall is { } list)
            foreach (var rule in list)
                output.WriteLine($"  {"",-12}  {TerminalText.Escape(rule)}");
        output.WriteLine($"  {"tags",-12}{(q.Tags.Count == 0 ? "-" : TerminalText.Escape(string.Join(' ', q.Tags)))}");
        output.WriteLine($"  {"features",-12}{(q.Features.Count == 0 ? "-" : "")}");
        foreach (var (key, value) in q.Features)
            output.WriteLine($"  {"",-12}  {TerminalText.Escape(key)}={TerminalText.Escape(value)}");
        output.WriteLine($"  {"devices",-12}{(q.Assignments.Count + q.Attachments.Count == 0 ? "-" : "")}");
        foreach (var d in q.Assignments.Values)
            output.WriteLine($"  {"",-12}  assigned {TerminalText.Escape(d.Key)} ({TerminalText.Escape(d.Mode)})");
        foreach (var d in q.Attachments.Values)
            output.WriteLine($"  {"",-12}  attached {TerminalText.Escape(d.Key)}");
        output.WriteLine();
        output.WriteLine($"  {"PROPERTY",-22}{"VALUE",-30}SOURCE");
        foreach (var p in at.Properties)
            output.WriteLine($"  {p.Name,-22}{Value(p),-30}{TerminalText.Escape(p.Source)}");
        output.Flush();
    }

    /// <summary>A value unknown to this read (from a global or a missing template) prints as <c>?</c>; none as <c>None</c>.</summary>
    private static string Value(PropertyAt p) =>
        p.Value is { Length: > 0 } v ? TerminalText.Escape(v) : p.Source.Contains("global", StringComparison.Ordinal) || p.Source.Contains("not found", StringComparison.Ordinal) ? "?" : p.Value is null ? "None" : "''";

    public static void WriteStateAtJson(TextWriter output, QubeStateAt at)
    {
        var q = at.State;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("qube", at.Name);
            w.WriteString("at", AuditDetails.FormatTime(at.At));
            w.WriteNumber("life", at.Life);
            w.WriteNumber("lives", at.Lives);
            w.WriteString("stream", at.PersistenceId);
            w.WriteString("class", q.Class.ToString());
            w.WriteString("power", q.Power.Wire());
            if (q.StartTime is { } started && q.Power.IsActive())
                w.WriteString("start_time", AuditDetails.FormatTime(started));
            w.WriteBoolean("failed", q.Failed);
            w.WriteString("failed_reason", q.FailedReason);
            w.WriteString("label", q.Label);
            w.WriteString("connected_netvm", q.ConnectedNetVm);
            if (q.Firewall is { } rules)
            {
                w.WriteStartArray("firewall");
                foreach (var r in rules)
                    w.WriteStringValue(r);
                w.WriteEndArray();
            }
            else
                w.WriteNull("firewall");
            w.WriteStartArray("tags");
            foreach (var t in q.Tags)
                w.WriteStringValue(t);
            w.WriteEndArray();
            w.WriteStartObject("features");
            foreach (var (k, v) in q.Features)
                w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteStartArray("assigned_devices");
            foreach (var d in q.Assignments.Values)
                w.WriteStringValue($"{d.Key} {d.Mode}");
            w.WriteEndArray();
            w.WriteStartArray("attached_devices");
            foreach (var d in q.Attachments.Values)
                w.WriteStringValue(d.Key);
            w.WriteEndArray();
            w.WriteStartObject("properties");
            foreach (var p in at.Properties)
            {
                w.WriteStartObject(p.Name);
                w.WriteString("value", p.Value);
                w.WriteString("source", p.Source);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
        output.Flush();
    }
}
