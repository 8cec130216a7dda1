using System.Collections.Immutable;
using System.Text;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// The <c>key='value'</c> form of device and assignment serializations (docs/qubes-semantics.md §5):
/// space-separated pairs, values in single quotes, keys starting with <c>_</c> are options.
/// </summary>
/// <remarks>
/// Upstream escapes only <c>'</c> (as <c>\'</c>), which makes a value ending in a backslash unreadable.
/// We also escape the backslash (<c>\\</c>) so every value round-trips; a backslash not followed by
/// <c>\</c> or <c>'</c> is read literally, so upstream's output still parses to the same value.
/// </remarks>
public static class KeyValueCodec
{
    public const string Yes = "yes";
    public const string No = "no";
    public const string Unknown = "unknown";

    // Upstream ALLOWED_CHARS_KEY: printable ASCII without space, quotes, '=' and backtick.
    public static bool IsKeyChar(char c) => c is > ' ' and <= '~' and not ('\'' or '"' or '=' or '`');

    // Upstream ALLOWED_CHARS_PARAM: every printable ASCII character including space.
    public static bool IsValueChar(char c) => c is >= ' ' and <= '~';

    public static bool IsValidKey(string key) => key.Length > 0 && key.All(IsKeyChar);

    public static bool IsValidValue(string value) => value.All(IsValueChar);

    public static string FormatBool(bool value) => value ? Yes : No;

    /// <summary>Upstream <c>qbool</c>: 0/no/false/off and 1/yes/true/on, any case.</summary>
    /// <exception cref="QubesValueError">Anything else.</exception>
    public static bool ParseBool(string untrustedValue) => untrustedValue.ToLowerInvariant() switch
    {
        "0" or "no" or "false" or "off" => false,
        "1" or "yes" or "true" or "on" => true,
        _ => throw new QubesValueError($"Invalid literal for boolean property: '{untrustedValue}'"),
    };

    public static string Quote(string value)
    {
        if (!IsValidValue(value))
            throw new ProtocolError($"Invalid chars in property value: '{value}'");
        return "'" + value.Replace("\\", "\\\\").Replace("'", "\\'") + "'";
    }

    public static string FormatPair(string key, string value)
    {
        if (!IsValidKey(key))
            throw new ProtocolError($"Invalid chars in property name: '{key}'");
        return key + "=" + Quote(value);
    }

    public static string Serialize(IEnumerable<KeyValuePair<string, string>> pairs) =>
        string.Join(' ', pairs.Select(p => FormatPair(p.Key, p.Value)));

    /// <summary>Reads pairs in order.</summary>
    /// <exception cref="ProtocolError">Malformed text, forbidden characters or a repeated key.</exception>
    public static ImmutableArray<KeyValuePair<string, string>> Parse(string untrusted)
    {
        var pairs = ImmutableArray.CreateBuilder<KeyValuePair<string, string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        var n = untrusted.Length;
        SkipSpaces();
        while (i < n)
        {
            var keyStart = i;
            while (i < n && untrusted[i] != '=')
                i++;
            var key = untrusted[keyStart..i];
            if (!IsValidKey(key))
                throw new ProtocolError($"Invalid chars in property name: '{key}'");
            if (i + 1 >= n || untrusted[i + 1] != '\'')
                throw new ProtocolError($"Expected quoted value for property '{key}'");
            i += 2;

            var value = new StringBuilder();
            while (true)
            {
                if (i >= n)
                    throw new ProtocolError($"Unterminated value of property '{key}'");
                var c = untrusted[i];
                if (c == '\\' && i + 1 < n && untrusted[i + 1] is '\\' or '\'')
                {
                    value.Append(untrusted[i + 1]);
                    i += 2;
                }
                else if (c == '\'')
                {
                    i++;
                    break;
                }
                else
                {
                    if (!IsValueChar(c))
                        throw new ProtocolError($"Invalid chars in property value of '{key}'");
                    value.Append(c);
                    i++;
                }
            }
            if (i < n && untrusted[i] != ' ')
                throw new ProtocolError($"Expected a space after property '{key}'");
            // A repeated key would let a later pair silently override an earlier, checked one.
            if (!seen.Add(key))
                throw new ProtocolError($"Duplicated property: '{key}'");
            pairs.Add(new(key, value.ToString()));
            SkipSpaces();
        }
        return pairs.ToImmutable();

        void SkipSpaces()
        {
            while (i < n && untrusted[i] == ' ')
                i++;
        }
    }

    /// <summary>Splits pairs into properties and options (keys starting with <c>_</c>, returned without it).</summary>
    public static (ImmutableDictionary<string, string> Properties, DeviceOptions Options) ParseSplit(string untrusted)
    {
        var properties = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var options = DeviceOptions.Empty;
        foreach (var (key, value) in Parse(untrusted))
        {
            if (key.StartsWith('_'))
                options = options.With(key[1..], value);
            else
                properties[key] = value;
        }
        return (properties.ToImmutable(), options);
    }
}
