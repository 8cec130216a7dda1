using System.Runtime.CompilerServices;

namespace QubesActors.Core.Policy;

/// <summary>
/// The system info as the evaluator looks it up: by name and by <c>uuid:UUID</c> (upstream adds a <c>uuid:</c> key per
/// qube to the same dictionary). Built once per <see cref="SystemInfo"/> instance and cached.
/// </summary>
internal sealed class SystemIndex
{
    private static readonly ConditionalWeakTable<SystemInfo, SystemIndex> Cache = new();

    private readonly Dictionary<string, (string Name, SystemDomain Domain)> byKey = new(StringComparer.Ordinal);

    /// <summary>Qubes by name, names that look like <c>uuid:</c> keys skipped (as upstream's expansions do).</summary>
    public IReadOnlyList<(string Name, SystemDomain Domain)> Qubes { get; }

    private SystemIndex(SystemInfo info)
    {
        var qubes = new List<(string, SystemDomain)>();
        foreach (var (name, domain) in info.Domains)
        {
            byKey.TryAdd(name, (name, domain));
            if (!name.StartsWith("uuid:", StringComparison.Ordinal))
                qubes.Add((name, domain));
        }
        foreach (var (name, domain) in info.Domains)
            if (domain.Uuid is { } uuid)
                byKey.TryAdd(UuidKey(uuid), (name, domain));
        Qubes = qubes;
    }

    public static string UuidKey(Guid uuid) => "uuid:" + uuid.ToString("D");

    public static SystemIndex Of(SystemInfo info) => Cache.GetValue(info, i => new SystemIndex(i));

    /// <summary>A qube by name or <c>uuid:UUID</c> (upstream: <c>key in info</c>).</summary>
    public bool TryGet(string key, out string name, out SystemDomain domain)
    {
        if (byKey.TryGetValue(key, out var found))
        {
            (name, domain) = found;
            return true;
        }
        name = "";
        domain = null!;
        return false;
    }

    public bool Contains(string key) => byKey.ContainsKey(key);

    public SystemDomain? Get(string key) => byKey.TryGetValue(key, out var found) ? found.Domain : null;

    /// <summary>The uuid string of a qube without the prefix, or null.</summary>
    public string? UuidOf(string key) => Get(key)?.Uuid?.ToString("D");

    /// <summary>The caller's <c>default_dispvm</c> as <c>@dispvm:NAME</c>, or null (upstream get_dispvm_template).</summary>
    public string? DispVmTemplateOf(string source) =>
        Get(source)?.DefaultDispVm is { } template ? "@dispvm:" + template : null;
}
