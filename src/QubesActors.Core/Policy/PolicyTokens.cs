using System.Text;

namespace QubesActors.Core.Policy;

/// <summary>What a token in a policy column (or a requested target) stands for (docs/policy.md §3).</summary>
public enum PolicyTokenKind
{
    /// <summary>A literal qube name or <c>uuid:UUID</c> (also <c>dom0</c> and <c>uuid:0…0</c>).</summary>
    Name,
    /// <summary><c>*</c></summary>
    Wildcard,
    /// <summary><c>@anyvm</c></summary>
    AnyVm,
    /// <summary><c>@adminvm</c></summary>
    AdminVm,
    /// <summary><c>@default</c></summary>
    Default,
    /// <summary><c>@type:CLASS</c></summary>
    Type,
    /// <summary><c>@tag:TAG</c></summary>
    Tag,
    /// <summary><c>@dispvm</c></summary>
    DispVm,
    /// <summary><c>@dispvm:NAME</c> / <c>@dispvm:uuid:UUID</c></summary>
    DispVmTemplate,
    /// <summary><c>@dispvm:@tag:TAG</c></summary>
    DispVmTag,
}

/// <summary>The column a token is read in; decides which kinds are valid and the wording of the error.</summary>
public enum PolicyTokenColumn
{
    Source,
    Target,
    /// <summary><c>target=</c> and <c>default_target=</c>.</summary>
    Redirect,
    /// <summary>The target named by the caller.</summary>
    IntendedTarget,
}

/// <summary>A parsed token: <paramref name="Text"/> as written, <paramref name="Value"/> the part after the prefix.</summary>
public sealed record PolicyToken(PolicyTokenKind Kind, string Text, string Value)
{
    public const string Dom0Uuid = "uuid:00000000-0000-0000-0000-000000000000";

    /// <summary>The three spellings of dom0 (<c>@adminvm</c>, <c>dom0</c>, <c>uuid:0…0</c>).</summary>
    public static bool IsDom0Alias(string? token) => token is "@adminvm" or "dom0" or Dom0Uuid;

    public bool IsDom0 => IsDom0Alias(Text);

    public override string ToString() => Text;

    private readonly record struct Spelling(string Text, PolicyTokenKind Kind, bool Source, bool Target, bool Redirect, bool Intended)
    {
        public bool ValidIn(PolicyTokenColumn column) => column switch
        {
            PolicyTokenColumn.Source => Source,
            PolicyTokenColumn.Target => Target,
            PolicyTokenColumn.Redirect => Redirect,
            _ => Intended,
        };
    }

    // Same order as upstream's class registry: the first valid spelling wins.
    private static readonly Spelling[] Exacts =
    [
        new("*", PolicyTokenKind.Wildcard, true, true, false, false),
        new("@adminvm", PolicyTokenKind.AdminVm, true, true, true, true),
        new("@anyvm", PolicyTokenKind.AnyVm, true, true, false, false),
        new("@default", PolicyTokenKind.Default, false, true, false, true),
        new("@dispvm", PolicyTokenKind.DispVm, false, true, true, true),
    ];

    private static readonly Spelling[] Prefixes =
    [
        new("@type:", PolicyTokenKind.Type, true, true, false, false),
        new("@tag:", PolicyTokenKind.Tag, true, true, false, false),
        new("@dispvm:", PolicyTokenKind.DispVmTemplate, true, true, true, true),
        new("@dispvm:@tag:", PolicyTokenKind.DispVmTag, true, true, false, false),
    ];

    private static string ColumnWord(PolicyTokenColumn column) => column switch
    {
        PolicyTokenColumn.Source => "source",
        PolicyTokenColumn.Target => "target",
        PolicyTokenColumn.Redirect => "redirect",
        _ => "intendedtarget",
    };

    /// <summary>Reads a token for a column; null and an error text (upstream's wording) when it is not valid there.</summary>
    public static PolicyToken? TryParse(string token, PolicyTokenColumn column, out string? error)
    {
        error = null;
        if (token.Length == 0)
        {
            error = $"invalid empty {ColumnWord(column)} token";
            return null;
        }
        if (token[0] != '@' && token != "*")
            return new PolicyToken(PolicyTokenKind.Name, token, token);
        foreach (var exact in Exacts)
            if (exact.ValidIn(column) && token == exact.Text)
                return new PolicyToken(exact.Kind, token, token);
        foreach (var prefix in Prefixes)
        {
            if (!prefix.ValidIn(column) || !token.StartsWith(prefix.Text, StringComparison.Ordinal))
                continue;
            var value = token[prefix.Text.Length..];
            if (value.Length == 0)
            {
                error = $"invalid empty {prefix.Text} token: {PyRepr.Str(token)}";
                return null;
            }
            // "@dispvm:@tag:x" is for the longer prefix; "@type:@x" falls through to invalid.
            if (value[0] == '@')
                continue;
            return new PolicyToken(prefix.Kind, token, value);
        }
        error = $"invalid {ColumnWord(column)} token: {PyRepr.Str(token)}";
        return null;
    }

    /// <summary>Reads a token or throws the syntax error at <paramref name="file"/>:<paramref name="line"/>.</summary>
    public static PolicyToken Parse(string token, PolicyTokenColumn column, string file, int line) =>
        TryParse(token, column, out var error) ?? throw new PolicySyntaxException(file, line, error!);
}

/// <summary>Python's <c>repr()</c> of strings and sequences, for error messages worded like upstream's.</summary>
internal static class PyRepr
{
    public static string Str(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        foreach (var c in s)
        {
            if (c == quote || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\t') sb.Append("\\t");
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c < 0x20 || (c >= 0x7f && c <= 0xa0)) sb.Append("\\x").Append(((int)c).ToString("x2"));
            else sb.Append(c);
        }
        return sb.Append(quote).ToString();
    }

    public static string List(IEnumerable<string> items) => "[" + string.Join(", ", items.Select(Str)) + "]";

    public static string Tuple(IReadOnlyList<string> items) =>
        items.Count == 1 ? "(" + Str(items[0]) + ",)" : "(" + string.Join(", ", items.Select(Str)) + ")";
}
