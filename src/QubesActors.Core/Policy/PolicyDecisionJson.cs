using System.Collections.Immutable;
using System.Text;
using System.Text.Json;

namespace QubesActors.Core.Policy;

/// <summary>
/// A decision as one JSON object: what <c>qvm policy eval --json</c> prints and what qubesd answers to
/// <c>policy.Evaluate</c>. Fields: result (allow, deny, ask, parse-error), target, user (null = the target's default
/// user), notify, autostart, targets_for_ask (sorted), default_target, reason, matched ({file, line} or null),
/// requested_target.
/// </summary>
public static class PolicyDecisionJson
{
    public static string ResultName(PolicyResult result) => result switch
    {
        PolicyResult.Allow => "allow",
        PolicyResult.Deny => "deny",
        PolicyResult.Ask => "ask",
        PolicyResult.ParseError => "parse-error",
        _ => throw new ArgumentOutOfRangeException(nameof(result), result, null),
    };

    public static PolicyResult ParseResult(string? name) => name switch
    {
        "allow" => PolicyResult.Allow,
        "deny" => PolicyResult.Deny,
        "ask" => PolicyResult.Ask,
        "parse-error" => PolicyResult.ParseError,
        _ => throw new FormatException($"unexpected policy result '{name}'"),
    };

    public static void Write(Utf8JsonWriter w, PolicyDecision d)
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

    public static string ToJson(PolicyDecision d)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
            Write(w, d);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <exception cref="FormatException">Not such an object.</exception>
    public static PolicyDecision Parse(string text)
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
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException(e.Message, e);
        }
    }
}
