namespace QubesActors.Cli.Shell;

/// <summary>
/// What completion needs to know about the system. Completion runs inside a key press, so the daemon-backed
/// implementation answers from a short-lived cache and gives up quickly; an empty answer is always acceptable.
/// </summary>
public interface ICompletionData
{
    IReadOnlyList<string> QubeNames();

    /// <summary>admin.vm.property.List of <paramref name="qube"/>.</summary>
    IReadOnlyList<string> PropertyNames(string qube);

    /// <summary>admin.vm.property.Get: type and value, or null when unknown.</summary>
    PropertyInfo? Property(string qube, string property);

    IReadOnlyList<string> GlobalPropertyNames();

    PropertyInfo? GlobalProperty(string property);

    IReadOnlyList<string> Labels();

    IReadOnlyList<string> QubeClasses();
}

/// <summary>A property as admin.*property.Get describes it: <c>default=&lt;bool&gt; type=&lt;type&gt; &lt;value&gt;</c>.</summary>
public sealed record PropertyInfo(string Type, string Value, bool IsDefault)
{
    /// <summary>Parses a Get answer; null when it does not have that shape.</summary>
    public static PropertyInfo? Parse(string answer)
    {
        var parts = answer.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("default=", StringComparison.Ordinal) || !parts[1].StartsWith("type=", StringComparison.Ordinal))
            return null;
        return new PropertyInfo(parts[1]["type=".Length..], parts.Length == 3 ? parts[2] : "", parts[0] == "default=True");
    }
}
