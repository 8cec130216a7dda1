using System.Collections.Immutable;

namespace QubesActors.Core.Policy;

/// <summary>One rule line to a <see cref="PolicyRule"/>, checks in upstream's order so the first error reported matches.</summary>
internal static class PolicyRuleParser
{
    // RPCNAME_ALLOWED_CHARSET: letters, digits, "+-._".
    private static bool IsRpcNameChar(char c) =>
        c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '+' or '-' or '.' or '_';

    /// <summary>Python's str.isspace() for the characters a policy line can hold.</summary>
    internal static bool IsPyWhitespace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary>Python's <c>str.split()</c>: runs of whitespace, no empty fields.</summary>
    internal static List<string> SplitFields(string line)
    {
        var fields = new List<string>();
        var start = -1;
        for (var i = 0; i < line.Length; i++)
        {
            if (IsPyWhitespace(line[i]))
            {
                if (start >= 0) fields.Add(line[start..i]);
                start = -1;
            }
            else if (start < 0)
            {
                start = i;
            }
        }
        if (start >= 0) fields.Add(line[start..]);
        return fields;
    }

    internal static string PyStrip(string line)
    {
        int start = 0, end = line.Length;
        while (start < end && IsPyWhitespace(line[start])) start++;
        while (end > start && IsPyWhitespace(line[end - 1])) end--;
        return line[start..end];
    }

    private static List<string> InvalidChars(string s, bool plusAllowed) =>
        s.Where(c => !IsRpcNameChar(c) || (!plusAllowed && c == '+'))
            .Select(c => c.ToString()).Distinct().OrderBy(c => c, StringComparer.Ordinal).ToList();

    /// <summary>Checks SERVICE and ARGUMENT columns (also of <c>!include-service</c>).</summary>
    public static void ValidateServiceAndArgument(string service, string argument, string file, int line)
    {
        var anyService = service == "*";
        if (!anyService)
        {
            var invalid = InvalidChars(service, plusAllowed: false);
            if (invalid.Count > 0)
                throw new PolicySyntaxException(file, line,
                    $"service {PyRepr.Str(service)} contains invalid characters: {PyRepr.Tuple(invalid)}");
        }
        if (argument == "*")
            return;
        var invalidArg = InvalidChars(argument, plusAllowed: true);
        if (invalidArg.Count > 0)
            throw new PolicySyntaxException(file, line,
                $"argument {PyRepr.Str(argument)} contains invalid characters: {PyRepr.Tuple(invalidArg)}");
        if (!argument.StartsWith('+'))
            throw new PolicySyntaxException(file, line, $"argument {PyRepr.Str(argument)} does not start with +");
        if (anyService)
            throw new PolicySyntaxException(file, line, "only * argument allowed for * service");
    }

    /// <summary>A new-format line: <c>SERVICE ARGUMENT SOURCE TARGET ACTION [PARAM…]</c>.</summary>
    public static PolicyRule FromLine(string line, string file, int lineNo)
    {
        var fields = SplitFields(line);
        if (fields.Count < 5)
            throw new PolicySyntaxException(file, lineNo, "wrong number of fields");
        return Build(fields[0], fields[1], fields[2], fields[3], fields[4], fields.Skip(5).ToList(), file, lineNo);
    }

    /// <summary>An old-format line of an <c>!include-service</c> file (commas already turned into spaces).</summary>
    public static PolicyRule FromServiceLine(string service, string argument, string line, string file, int lineNo)
    {
        var fields = SplitFields(line.Replace(',', ' '));
        if (fields.Count < 3)
            throw new PolicySyntaxException(file, lineNo, "wrong number of fields");
        return Build(service, argument, fields[0], fields[1], fields[2], fields.Skip(3).ToList(), file, lineNo);
    }

    private static readonly string[] AllowParams = ["target", "user", "notify", "autostart"];
    private static readonly string[] AskParams = ["target", "default_target", "user", "notify", "autostart"];
    private static readonly string[] DenyParams = ["notify"];

    public static PolicyRule Build(
        string service, string argument, string sourceText, string targetText, string actionText,
        IReadOnlyList<string> parameters, string file, int lineNo)
    {
        ValidateServiceAndArgument(service, argument, file, lineNo);
        var source = PolicyToken.Parse(sourceText, PolicyTokenColumn.Source, file, lineNo);
        var target = PolicyToken.Parse(targetText, PolicyTokenColumn.Target, file, lineNo);
        var action = actionText switch
        {
            "allow" => PolicyAction.Allow,
            "deny" => PolicyAction.Deny,
            "ask" => PolicyAction.Ask,
            _ => throw new PolicySyntaxException(file, lineNo, $"invalid action: {actionText}"),
        };

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var param in parameters)
        {
            var eq = param.IndexOf('=');
            if (eq < 0)
                throw new PolicySyntaxException(file, lineNo, $"invalid action parameter syntax: {PyRepr.Str(param)}");
            var key = param[..eq];
            if (!values.TryAdd(key, param[(eq + 1)..]))
                throw new PolicySyntaxException(file, lineNo, $"parameter given twice: {PyRepr.Str(key)}");
        }

        bool? ReadBool(string key)
        {
            if (!values.TryGetValue(key, out var v)) return null;
            return v switch
            {
                "yes" => true,
                "no" => false,
                _ => throw new PolicySyntaxException(file, lineNo,
                    $"{PyRepr.Str(key)} is {PyRepr.Str(v)}, but can be only 'yes' or 'no'"),
            };
        }
        var notify = ReadBool("notify");
        var autostart = ReadBool("autostart");

        var allowed = action switch { PolicyAction.Allow => AllowParams, PolicyAction.Ask => AskParams, _ => DenyParams };
        if (values.Keys.Any(k => !allowed.Contains(k)))
            throw new PolicySyntaxException(file, lineNo,
                $"invalid parameters for action {action}: {PyRepr.List(parameters)}");

        PolicyToken? Redirect(string key) => values.TryGetValue(key, out var v)
            ? PolicyToken.Parse(v, PolicyTokenColumn.Redirect, file, lineNo)
            : null;
        var redirect = Redirect("target");
        var defaultTarget = Redirect("default_target");

        if (target.Kind == PolicyTokenKind.Default && action == PolicyAction.Allow && redirect is null)
            throw new PolicySyntaxException(file, lineNo, "allow action for @default rule must specify target= option");

        var user = values.TryGetValue("user", out var u) && u.Length > 0 ? u : null;
        return new PolicyRule(
            service, argument, source, target, action, redirect, defaultTarget, user,
            notify ?? action == PolicyAction.Deny,
            autostart ?? true,
            [.. parameters],
            new PolicyLocation(file, lineNo));
    }
}
