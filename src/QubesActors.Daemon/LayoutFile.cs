using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;

namespace QubesActors.Daemon;

/// <summary>Reads config/layout.default.json (the qubes a first start creates).</summary>
public static class LayoutFile
{
    private sealed record QubeDto(string Name, QubeClass Class, string Label, string? Template,
        Dictionary<string, string>? Properties, Dictionary<string, string>? Features, List<string>? Tags, List<DeviceDto>? Devices);

    private sealed record DeviceDto([property: JsonPropertyName("class")] string DeviceClass, string Device, string Mode, Dictionary<string, string>? Options);

    private sealed record LayoutDto(List<QubeDto> Qubes, Dictionary<string, string>? Globals);

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNameCaseInsensitive = true,
        Converters = { new JsonStringEnumConverter() },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static LayoutSpec Load(string path)
    {
        var dto = JsonSerializer.Deserialize<LayoutDto>(File.ReadAllText(path), Options)
                  ?? throw new InvalidDataException($"{path}: empty layout");
        return new LayoutSpec(
            [.. dto.Qubes.Select(q => new LayoutQube(q.Name, q.Class, q.Label, q.Template,
                (q.Properties ?? []).ToImmutableDictionary(), (q.Features ?? []).ToImmutableDictionary(), [.. q.Tags ?? []],
                [.. (q.Devices ?? []).Select(d => new LayoutDevice(d.DeviceClass, d.Device, d.Mode, (d.Options ?? []).ToImmutableDictionary()))]))],
            (dto.Globals ?? []).ToImmutableDictionary());
    }
}
