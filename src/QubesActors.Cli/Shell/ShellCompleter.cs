using System.CommandLine;
using System.CommandLine.Completions;

namespace QubesActors.Cli.Shell;

/// <summary>What can replace the word under the cursor: <c>line[Start..End]</c> by one of <see cref="Candidates"/> (unquoted).</summary>
public sealed record CompletionResult(int Start, int End, string Word, IReadOnlyList<string> Candidates)
{
    public static CompletionResult None(int cursor) => new(cursor, cursor, "", []);
}

/// <summary>What a value position holds, so completion knows where to look for candidates.</summary>
public enum ValueRole
{
    None,
    Qube,
    Property,
    PropertyValue,
    GlobalProperty,
    GlobalPropertyValue,
    Label,
    QubeClass,
    CommandName,
}

/// <summary>
/// Completion of a shell line, decided from the System.CommandLine tree (commands, aliases, options, arguments)
/// and an <see cref="ICompletionData"/>; no I/O of its own, so it is tested without a daemon. Which positions
/// take a qube, a property or a value is read from argument and option names (see <see cref="RoleOf(string)"/>);
/// a command named prefs or global-prefs gets those roles by position when its argument names say nothing.
/// </summary>
public sealed class ShellCompleter(Command root, ICompletionData data)
{
    /// <summary>Properties whose values are qubes, upstream's and ours; an option with one of these names completes qube names.</summary>
    public static readonly IReadOnlySet<string> QubeValuedNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "qube", "qubes", "vm", "vms", "vmname", "vmnames", "qubename", "qubenames", "domain", "domains",
        "template", "netvm", "default_dispvm", "management_dispvm", "audiovm", "guivm", "dispvm",
        "default_template", "default_netvm", "default_audiovm", "default_guivm", "default_management_dispvm",
        "updatevm", "clockvm",
    };

    public CompletionResult Complete(string line, int cursor)
    {
        cursor = Math.Clamp(cursor, 0, line.Length);
        var partial = ShellTokenizer.Partial(line, cursor);
        var word = partial.Current.Text;
        var end = cursor;
        while (end < line.Length && !char.IsWhiteSpace(line[end]))
            end++;
        var candidates = Candidates(partial, word)
            .Where(c => c.StartsWith(word, StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        return new CompletionResult(partial.Current.Start, end, word, candidates);
    }

    private IEnumerable<string> Candidates(PartialLine partial, string word)
    {
        var path = new List<Command> { root };
        var positionals = new List<string>();
        Option? pending = null;
        var afterDashes = false;
        foreach (var w in partial.Words.Select(w => w.Text))
        {
            var cmd = path[^1];
            if (pending is not null)
            {
                pending = null;
                continue;
            }
            if (!afterDashes && w == "--")
            {
                afterDashes = true;
                continue;
            }
            if (!afterDashes && w.Length > 1 && w[0] == '-')
            {
                var eq = w.IndexOf('=', StringComparison.Ordinal);
                var option = FindOption(path, eq < 0 ? w : w[..eq]);
                if (option is not null && eq < 0 && TakesValue(option))
                    pending = option;
                continue;
            }
            if (positionals.Count == 0 && FindSubcommand(cmd, w) is { } sub)
            {
                path.Add(sub);
                continue;
            }
            positionals.Add(w);
        }

        var command = path[^1];
        if (pending is not null)
            return OptionValues(pending);
        if (!afterDashes && word.StartsWith('-'))
        {
            var eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && FindOption(path, word[..eq]) is { } option)
                return OptionValues(option).Select(v => word[..(eq + 1)] + v);
            return VisibleOptions(path).SelectMany(NamesOf);
        }
        var result = new List<string>();
        if (positionals.Count == 0)
            result.AddRange(command.Subcommands.Where(c => !c.Hidden).SelectMany(c => c.Aliases.Prepend(c.Name)));
        if (ArgumentAt(command, positionals.Count) is { } argument)
            result.AddRange(ArgumentValues(command, argument, positionals));
        return result;
    }

    private IEnumerable<string> ArgumentValues(Command command, Argument argument, IReadOnlyList<string> positionals)
    {
        var roles = Roles(command);
        var role = roles[command.Arguments.IndexOf(argument)];
        // A property's value needs the property (and its qube): the words at the positions with those roles.
        string? At(ValueRole wanted)
        {
            var index = roles.IndexOf(wanted);
            return index < 0 ? null : WordOf(command, index, positionals);
        }
        var values = role switch
        {
            ValueRole.PropertyValue when At(ValueRole.Qube) is { } qube && At(ValueRole.Property) is { } prop => ValuesFor(data.Property(qube, prop)),
            ValueRole.GlobalPropertyValue when At(ValueRole.GlobalProperty) is { } prop => ValuesFor(data.GlobalProperty(prop)),
            ValueRole.Property when At(ValueRole.Qube) is { } qube => data.PropertyNames(qube),
            _ => ValuesFor(role),
        };
        return values.Concat(StaticCompletions(argument));
    }

    private IEnumerable<string> OptionValues(Option option) =>
        ValuesFor(RoleOf(option.Name.TrimStart('-'))).Concat(StaticCompletions(option));

    private IEnumerable<string> ValuesFor(ValueRole role) => role switch
    {
        ValueRole.Qube => data.QubeNames(),
        ValueRole.GlobalProperty => data.GlobalPropertyNames(),
        ValueRole.Label => data.Labels(),
        ValueRole.QubeClass => data.QubeClasses(),
        ValueRole.CommandName => root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name),
        _ => [],
    };

    /// <summary>Values of a property by its type: qubes for vm, labels for label, True/False for bool, else the current value.</summary>
    private IEnumerable<string> ValuesFor(PropertyInfo? property) => property?.Type switch
    {
        null => [],
        "vm" => data.QubeNames(),
        "label" => data.Labels(),
        "bool" => ["True", "False"],
        _ => property.Value.Length > 0 ? [property.Value] : [],
    };

    /// <summary>What System.CommandLine itself offers (enum values, AcceptOnlyFromAmong, custom sources).</summary>
    private static IEnumerable<string> StaticCompletions(Symbol symbol)
    {
        try
        {
            return symbol.GetCompletions(CompletionContext.Empty).Select(c => c.InsertText ?? c.Label).ToList();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A completion source that needs a real parse must not break the key press.
            return [];
        }
    }

    /// <summary>The role of each argument of <paramref name="command"/>, by name first, then by position for prefs commands.</summary>
    public static List<ValueRole> Roles(Command command)
    {
        var roles = command.Arguments.Select(a => RoleOf(a.HelpName ?? a.Name) is var r and not ValueRole.None ? r : RoleOf(a.Name)).ToList();
        // "property" after a qube is a qube's property; without one it is a global property. Likewise "value".
        var hasQube = roles.Contains(ValueRole.Qube);
        for (var i = 0; i < roles.Count; i++)
        {
            roles[i] = roles[i] switch
            {
                ValueRole.Property when !hasQube => ValueRole.GlobalProperty,
                ValueRole.PropertyValue when !hasQube => ValueRole.GlobalPropertyValue,
                var r => r,
            };
        }
        // The new qube of create (first argument) and clone (second) does not exist yet: nothing to complete there.
        var newName = Normalize(command.Name) switch { "create" => 0, "clone" => 1, _ => -1 };
        if (newName >= 0 && newName < roles.Count && roles[newName] == ValueRole.Qube)
            roles[newName] = ValueRole.None;
        ValueRole[]? byPosition = Normalize(command.Name) switch
        {
            "prefs" or "qvmprefs" => [ValueRole.Qube, ValueRole.Property, ValueRole.PropertyValue],
            "globalprefs" or "qubesprefs" => [ValueRole.GlobalProperty, ValueRole.GlobalPropertyValue],
            _ => null,
        };
        if (byPosition is not null)
        {
            for (var i = 0; i < roles.Count && i < byPosition.Length; i++)
            {
                if (roles[i] == ValueRole.None)
                    roles[i] = byPosition[i];
            }
        }
        return roles;
    }

    /// <summary>A role from a symbol name: qube-ish and qube-valued property names, property, value, label, class, command.</summary>
    public static ValueRole RoleOf(string name)
    {
        var lower = name.Trim('<', '>', '-').ToLowerInvariant().Replace('-', '_');
        if (QubeValuedNames.Contains(lower) || QubeValuedNames.Contains(lower.Replace("_", "")))
            return ValueRole.Qube;
        return Normalize(lower) switch
        {
            "property" or "prop" or "propertyname" or "properties" => ValueRole.Property,
            "value" or "propertyvalue" => ValueRole.PropertyValue,
            "label" => ValueRole.Label,
            "class" or "vmclass" or "qubeclass" => ValueRole.QubeClass,
            "command" or "commandname" => ValueRole.CommandName,
            _ => ValueRole.None,
        };
    }

    private static string Normalize(string name) => new([.. name.ToLowerInvariant().Where(char.IsLetterOrDigit)]);

    /// <summary>The argument that the positional word at <paramref name="index"/> binds to, by arity.</summary>
    private static Argument? ArgumentAt(Command command, int index)
    {
        var before = 0;
        foreach (var argument in command.Arguments)
        {
            var max = argument.Arity.MaximumNumberOfValues;
            if (index < before + max)
                return argument.Hidden ? null : argument;
            before += max;
        }
        return null;
    }

    /// <summary>The first word bound to the argument at <paramref name="argumentIndex"/>, if typed already.</summary>
    private static string? WordOf(Command command, int argumentIndex, IReadOnlyList<string> positionals)
    {
        var before = 0;
        for (var i = 0; i < argumentIndex; i++)
            before += command.Arguments[i].Arity.MaximumNumberOfValues;
        return before < positionals.Count ? positionals[before] : null;
    }

    private static Command? FindSubcommand(Command command, string word) =>
        command.Subcommands.FirstOrDefault(c => c.Name == word || c.Aliases.Contains(word));

    /// <summary>Options of the innermost command, and recursive ones of its ancestors (as System.CommandLine binds them).</summary>
    private static IEnumerable<Option> VisibleOptions(IReadOnlyList<Command> path) =>
        path[^1].Options.Concat(path.Take(path.Count - 1).SelectMany(c => c.Options.Where(o => o.Recursive))).Where(o => !o.Hidden);

    private static Option? FindOption(IReadOnlyList<Command> path, string word) =>
        path[^1].Options.Concat(path.Take(path.Count - 1).SelectMany(c => c.Options.Where(o => o.Recursive)))
            .FirstOrDefault(o => o.Name == word || o.Aliases.Contains(word));

    private static IEnumerable<string> NamesOf(Option option) => option.Aliases.Prepend(option.Name);

    /// <summary>A flag (bool or arity zero) takes no value word; anything else takes the next word.</summary>
    private static bool TakesValue(Option option) => option.ValueType != typeof(bool) && option.Arity.MaximumNumberOfValues > 0;
}
