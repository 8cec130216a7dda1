using System.Collections.Immutable;
using System.Text.Json;
using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Policy;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// A <see cref="PolicyDecision"/> as <c>qvm policy eval</c> prints it: aligned <c>KEY  VALUE</c> lines, or one JSON
/// object. The JSON object is also what qubesd answers to <c>policy.Evaluate</c>, so it is read back here.
/// </summary>
internal static class PolicyOutput
{
    public static string ResultName(PolicyResult result) => result switch
    {
        PolicyResult.Allow => "allow",
        PolicyResult.Deny => "deny",
        PolicyResult.Ask => "ask",
        PolicyResult.ParseError => "parse-error",
        _ => throw new ArgumentOutOfRangeException(nameof(result), result, null),
    };

    private static PolicyResult ParseResult(string? name) => name switch
    {
        "allow" => PolicyResult.Allow,
        "deny" => PolicyResult.Deny,
        "ask" => PolicyResult.Ask,
        "parse-error" => PolicyResult.ParseError,
        _ => throw new QvmRuntimeException($"unexpected policy result from qubesd: '{Terminal.Sanitize(name ?? "null")}'"),
    };

    public static void WriteText(Invocation inv, PolicyDecision d)
    {
        static string Or(string? value) => string.IsNullOrEmpty(value) ? "-" : value;
        static string YesNo(bool value) => value ? "yes" : "no";
        // Policy text (reasons, file names, qube names) is untrusted: plain cells, sanitised when written.
        AlignedTable.Write(inv.Out,
        [
            ["result", ResultName(d.Result)],
            ["target", Or(d.Target)],
            // As the policy daemon says it: no user= means the target's default user.
            ["user", d.User ?? "DEFAULT"],
            ["notify", YesNo(d.Notify)],
            ["autostart", YesNo(d.Autostart)],
            ["targets_for_ask", d.TargetsForAsk.IsDefaultOrEmpty ? "-" : string.Join(' ', d.TargetsForAsk)],
            ["default_target", Or(d.DefaultTarget)],
            ["reason", Or(d.Reason)],
            ["matched", d.Matched is null ? "-" : d.Matched.ToString()],
            ["requested_target", Or(d.RequestedTarget)],
        ]);
    }

    public static void WriteJson(Utf8JsonWriter w, PolicyDecision d)
    {
        w.WriteStartObject();
        w.WriteString("result", ResultName(d.Result));
        w.WriteString("target", d.Target);
        w.WriteString("user", d.User);
        w.WriteBoolean("notify", d.Notify);
        w.WriteBoolean("autostart", d.Autostart);
        w.WriteStartArray("targets_for_ask");
        if (!d.TargetsForAsk.IsDefault)
            foreach (var t in d.TargetsForAsk.Order(StringComparer.Ordinal))
                w.WriteStringValue(t);
        w.WriteEndArray();
        w.WriteString("default_target", d.DefaultTarget);
        w.WriteString("reason", d.Reason);
        if (d.Matched is null)
        {
            w.WriteNull("matched");
        }
        else
        {
            w.WriteStartObject("matched");
            w.WriteString("file", d.Matched.File);
            w.WriteNumber("line", d.Matched.Line);
            w.WriteEndObject();
        }
        w.WriteString("requested_target", d.RequestedTarget);
        w.WriteEndObject();
    }

    /// <summary>The daemon's answer to policy.Evaluate: the object <see cref="WriteJson"/> writes.</summary>
    public static PolicyDecision ReadJson(string text)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            var o = json.RootElement;
            string? Str(string key) => o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            bool Bool(string key) => o.GetProperty(key).GetBoolean();
            var targets = o.TryGetProperty("targets_for_ask", out var t) && t.ValueKind == JsonValueKind.Array
                ? t.EnumerateArray().Select(e => e.GetString() ?? "").ToImmutableArray()
                : [];
            PolicyLocation? matched = o.TryGetProperty("matched", out var m) && m.ValueKind == JsonValueKind.Object
                ? new PolicyLocation(m.GetProperty("file").GetString() ?? "", m.GetProperty("line").GetInt32())
                : null;
            return new PolicyDecision(ParseResult(Str("result")), Str("target"), Str("user"), Bool("notify"), Bool("autostart"),
                targets, Str("default_target"), Str("reason"), matched, Str("requested_target") ?? "");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new QvmRuntimeException($"unexpected policy decision from qubesd: {e.Message}");
        }
    }
}
