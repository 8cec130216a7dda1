using QubesActors.Cli.Shell;

namespace QubesActors.IntegrationTests.Shell;

/// <summary>A fixed system for completion tests: a few qubes, properties with types, and a call log.</summary>
internal sealed class FakeCompletionData : ICompletionData
{
    public List<string> Calls { get; } = [];

    public IReadOnlyList<string> Qubes { get; init; } = ["dom0", "debian-13", "sys-net", "sys-firewall", "work", "personal", "vault"];

    private static readonly Dictionary<string, PropertyInfo> QubeProperties = new(StringComparer.Ordinal)
    {
        ["netvm"] = new("vm", "sys-firewall", true),
        ["template"] = new("vm", "debian-13", false),
        ["label"] = new("label", "blue", false),
        ["autostart"] = new("bool", "False", true),
        ["memory"] = new("int", "400", true),
        ["kernelopts"] = new("str", "", true),
        ["name"] = new("str", "work", false),
    };

    private static readonly Dictionary<string, PropertyInfo> Globals = new(StringComparer.Ordinal)
    {
        ["default_netvm"] = new("vm", "sys-firewall", false),
        ["clockvm"] = new("vm", "sys-net", false),
        ["check_updates_vm"] = new("bool", "True", true),
        ["default_kernel"] = new("str", "6.1", true),
    };

    public IReadOnlyList<string> QubeNames()
    {
        Calls.Add("qubes");
        return Qubes;
    }

    public IReadOnlyList<string> PropertyNames(string qube)
    {
        Calls.Add($"props {qube}");
        return Qubes.Contains(qube) ? [.. QubeProperties.Keys] : [];
    }

    public PropertyInfo? Property(string qube, string property)
    {
        Calls.Add($"prop {qube} {property}");
        return Qubes.Contains(qube) && QubeProperties.TryGetValue(property, out var p) ? p : null;
    }

    public IReadOnlyList<string> GlobalPropertyNames() => [.. Globals.Keys];

    public PropertyInfo? GlobalProperty(string property) => Globals.GetValueOrDefault(property);

    public IReadOnlyList<string> Labels() => ["red", "green", "blue", "black"];

    public IReadOnlyList<string> QubeClasses() => ["AppVM", "DispVM", "StandaloneVM", "TemplateVM"];
}
