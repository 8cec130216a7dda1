using System.Collections;
using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// Per-device options (<c>no-strict-reset</c>, <c>permissive</c>, <c>read-only</c>, ...), serialized as
/// <c>_key='value'</c>. Compared by content, so records holding them keep value equality.
/// </summary>
public sealed class DeviceOptions : IEquatable<DeviceOptions>, IReadOnlyDictionary<string, string>
{
    private readonly ImmutableSortedDictionary<string, string> _items;

    private DeviceOptions(ImmutableSortedDictionary<string, string> items) => _items = items;

    public static DeviceOptions Empty { get; } = new(ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal));

    public static DeviceOptions Of(params (string Key, string Value)[] items) =>
        items.Aggregate(Empty, (options, item) => options.With(item.Key, item.Value));

    /// <exception cref="ProtocolError">Key or value not serializable.</exception>
    public DeviceOptions With(string key, string value)
    {
        // Checked here so that an option that is accepted can always be serialized again.
        if (!KeyValueCodec.IsValidKey(key))
            throw new ProtocolError($"Invalid chars in option name: '{key}'");
        if (!KeyValueCodec.IsValidValue(value))
            throw new ProtocolError($"Invalid chars in value of option '{key}'");
        return new(_items.SetItem(key, value));
    }

    public DeviceOptions WithFlag(string key, bool value) => With(key, KeyValueCodec.FormatBool(value));

    public DeviceOptions Without(string key) => new(_items.Remove(key));

    /// <summary>Boolean option as upstream reads it; absent is false.</summary>
    public bool Flag(string key) => _items.TryGetValue(key, out var value) && KeyValueCodec.ParseBool(value);

    public string this[string key] => _items[key];
    public IEnumerable<string> Keys => _items.Keys;
    public IEnumerable<string> Values => _items.Values;
    public int Count => _items.Count;
    public bool ContainsKey(string key) => _items.ContainsKey(key);
    public bool TryGetValue(string key, out string value) => _items.TryGetValue(key, out value!);
    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The <c>_key='value'</c> pairs, sorted by key.</summary>
    public IEnumerable<KeyValuePair<string, string>> ToSerializedPairs() =>
        _items.Select(p => new KeyValuePair<string, string>("_" + p.Key, p.Value));

    public bool Equals(DeviceOptions? other) =>
        other is not null && _items.Count == other._items.Count &&
        _items.All(p => other._items.TryGetValue(p.Key, out var v) && v == p.Value);

    public override bool Equals(object? obj) => Equals(obj as DeviceOptions);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var (key, value) in _items)
        {
            hash.Add(key);
            hash.Add(value);
        }
        return hash.ToHashCode();
    }

    public override string ToString() => string.Join(", ", _items.Select(p => $"{p.Key}={p.Value}"));
}
