using System.Collections.Immutable;
using System.Text.Json;

namespace QubesActors.Core.Policy;

/// <summary>
/// Reads qubesd's <c>internal.GetSystemInfo</c> answer:
/// <c>{"domains": {"NAME": {"type": …, "tags": […], "template_for_dispvms": …, "default_dispvm": …|null,
/// "power_state": …, "uuid": …, "internal": …}}}</c>; only <c>type</c> is required, other fields are ignored.
/// </summary>
public static class SystemInfoJson
{
    /// <summary>Throws <see cref="FormatException"/> (with the JSON error inside) for anything not of that shape.</summary>
    public static SystemInfo Parse(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"system info is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("domains", out var domains)
                || domains.ValueKind != JsonValueKind.Object)
                throw new FormatException("system info: expected an object with a \"domains\" object");
            var builder = ImmutableSortedDictionary.CreateBuilder<string, SystemDomain>(StringComparer.Ordinal);
            foreach (var entry in domains.EnumerateObject())
                builder[entry.Name] = ReadDomain(entry.Name, entry.Value);
            return new SystemInfo(builder.ToImmutable());
        }
    }

    private static SystemDomain ReadDomain(string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new FormatException($"system info: domain '{name}' is not an object");
        var type = RequiredString(name, e, "type");
        var tags = ImmutableArray<string>.Empty;
        if (e.TryGetProperty("tags", out var tagsElement) && tagsElement.ValueKind != JsonValueKind.Null)
        {
            if (tagsElement.ValueKind != JsonValueKind.Array)
                throw new FormatException($"system info: domain '{name}': 'tags' is not an array");
            tags = [.. tagsElement.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String
                ? t.GetString()!
                : throw new FormatException($"system info: domain '{name}': a tag is not a string"))];
        }
        Guid? uuid = null;
        if (OptionalString(name, e, "uuid") is { } uuidText)
            uuid = Guid.TryParseExact(uuidText, "D", out var parsed)
                ? parsed
                : throw new FormatException($"system info: domain '{name}': invalid uuid '{uuidText}'");
        return new SystemDomain(
            type,
            tags,
            OptionalBool(name, e, "template_for_dispvms"),
            OptionalString(name, e, "default_dispvm"),
            OptionalString(name, e, "power_state") ?? "Halted",
            uuid,
            OptionalBool(name, e, "internal"));
    }

    private static string RequiredString(string name, JsonElement e, string key) =>
        OptionalString(name, e, key) ?? throw new FormatException($"system info: domain '{name}' has no '{key}'");

    private static string? OptionalString(string name, JsonElement e, string key)
    {
        if (!e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : throw new FormatException($"system info: domain '{name}': '{key}' is not a string");
    }

    private static bool OptionalBool(string name, JsonElement e, string key)
    {
        if (!e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FormatException($"system info: domain '{name}': '{key}' is not a boolean"),
        };
    }
}
