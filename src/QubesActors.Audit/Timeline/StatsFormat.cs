using System.Globalization;
using System.Text;
using System.Text.Json;
using QubesActors.Audit.Journal;
using QubesActors.Audit.Log;

namespace QubesActors.Audit.Timeline;

/// <summary>What <c>qubes-audit stats</c> prints: an aligned table, a JSON array or CSV (formula-safe, as <c>log</c>).</summary>
public static class StatsFormat
{
    public static void WriteTable(TextWriter output, IEnumerable<QubeStats> stats)
    {
        output.WriteLine($"{"QUBE",-20} {"EVENTS",8} {"STATUS",-18} {"LAST START",-24} {"RUNNING TIME",18} {"STARTS",7} {"CRASHES",8} {"RESTARTS",9} {"LOOPS",6} {"DENIED",7} {"LIVES",6}");
        foreach (var s in stats)
            output.WriteLine($"{TerminalText.Escape(s.Name),-20} {s.Events,8} {s.Status,-18} {Time(s.LastStart),-24} {PowerSpan.FormatDuration(s.RunningTime),18} " +
                             $"{s.Starts,7} {s.Crashes,8} {s.RestartsScheduled,9} {s.RestartLoops,6} {s.Denied,7} {s.Lives,6}");
        output.Flush();
    }

    public static void WriteCsv(TextWriter output, IEnumerable<QubeStats> stats)
    {
        output.WriteLine("qube,label,events,status,last_start,running_ms,starts,crashes,restarts_scheduled,restart_loops,denied,lives");
        foreach (var s in stats)
            output.WriteLine(string.Join(',', LogFormat.Csv(s.Name), LogFormat.Csv(s.Label), N(s.Events), LogFormat.Csv(s.Status), Time(s.LastStart),
                N((long)s.RunningTime.TotalMilliseconds), N(s.Starts), N(s.Crashes), N(s.RestartsScheduled), N(s.RestartLoops), N(s.Denied), N(s.Lives)));
        output.Flush();
    }

    public static void WriteJson(TextWriter output, IEnumerable<QubeStats> stats)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true }))
        {
            w.WriteStartArray();
            foreach (var s in stats)
            {
                w.WriteStartObject();
                w.WriteString("qube", s.Name);
                w.WriteString("label", s.Label);
                w.WriteNumber("events", s.Events);
                w.WriteString("status", s.Status);
                if (s.LastStart is { } start)
                    w.WriteString("last_start", AuditDetails.FormatTime(start));
                else
                    w.WriteNull("last_start");
                w.WriteNumber("running_ms", (long)s.RunningTime.TotalMilliseconds);
                w.WriteNumber("starts", s.Starts);
                w.WriteNumber("crashes", s.Crashes);
                w.WriteNumber("restarts_scheduled", s.RestartsScheduled);
                w.WriteNumber("restart_loops", s.RestartLoops);
                w.WriteNumber("denied", s.Denied);
                w.WriteNumber("lives", s.Lives);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
        output.Flush();
    }

    private static string Time(DateTimeOffset? t) => t is { } time ? AuditDetails.FormatTime(time) : "-";

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);
}
