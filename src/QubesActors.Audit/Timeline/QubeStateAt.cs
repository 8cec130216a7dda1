using System.Collections.Frozen;
using System.Collections.Immutable;
using QubesActors.Audit.Journal;
using QubesActors.Core.Events;
using QubesActors.Core.Model;

namespace QubesActors.Audit.Timeline;

/// <summary>One property as it was: its value (null = None/empty) and where the value came from.</summary>
public sealed record PropertyAt(string Name, string? Value, string Source)
{
    public const string Set = "set";
    public const string Default = "default";
}

/// <summary>
/// A qube as it was at <see cref="At"/>: the state the Core model's Apply gives after every event of its stream up to
/// that moment (the same fold recovery does), and its properties explicit or by default.
/// </summary>
public sealed record QubeStateAt(
    string Name,
    DateTimeOffset At,
    int Life,
    int Lives,
    string PersistenceId,
    DateTimeOffset Created,
    QubeState State,
    ImmutableArray<PropertyAt> Properties)
{
    public PropertyAt? Property(string name) => Properties.FirstOrDefault(p => p.Name == name);
}

/// <summary>
/// Replays a qube's events up to a moment. Global properties (<c>default_netvm</c>, ...) live in the collection's
/// stream, which the per-qube read does not include: a default that comes from one is shown as
/// <c>(global default_netvm)</c> rather than guessed. A template's values are used when its events are given.
/// </summary>
public static class QubeStateAtBuilder
{
    /// <summary>Property → the global property its default falls back to.</summary>
    private static readonly FrozenDictionary<string, string> GlobalDefaults = new Dictionary<string, string>
    {
        ["netvm"] = "default_netvm",
        ["default_dispvm"] = "default_dispvm",
        ["management_dispvm"] = "management_dispvm",
        ["guivm"] = "default_guivm",
        ["audiovm"] = "default_audiovm",
        ["kernel"] = "default_kernel",
        ["qrexec_timeout"] = "default_qrexec_timeout",
        ["shutdown_timeout"] = "default_shutdown_timeout",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Properties whose default is the template's value (docs/qubes-semantics.md §1.2).</summary>
    private static readonly FrozenSet<string> FromTemplate = new[]
    {
        "management_dispvm", "memory", "maxmem", "vcpus", "virt_mode", "kernel", "kernelopts", "default_user", "qrexec_timeout", "shutdown_timeout",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Derived from the netvm: unknown while the netvm is.</summary>
    private static readonly FrozenSet<string> FromNetVm = new[] { "ip", "visible_ip", "dns" }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The global properties and labels at <paramref name="at"/>, from the collection stream's events.</summary>
    public static CollectionState GlobalsAt(IEnumerable<AuditEvent> collectionEvents, DateTimeOffset at)
    {
        var collection = CollectionState.Empty;
        foreach (var e in collectionEvents)
            if (Truncate(e.Time) <= at && e.Event is CollectionEvent c)
                collection = collection.Apply(c);
        return collection;
    }

    /// <summary>
    /// The life of <paramref name="name"/> that existed at <paramref name="at"/>, replayed up to it (events at exactly
    /// <paramref name="at"/> included, at the ms precision shown); null when no life covers that moment.
    /// </summary>
    public static (QubeState State, int Life, int Lives, string PersistenceId, DateTimeOffset Created)? Replay(IEnumerable<AuditEvent> events, string name, DateTimeOffset at)
    {
        var replays = new Dictionary<string, QubeReplay>(StringComparer.Ordinal);
        var order = new List<QubeReplay>();
        foreach (var e in events)
        {
            if (Truncate(e.Time) > at)
                continue;
            if (e.Event is QubeCreated c && c.Name == name)
            {
                var replay = QubeReplay.Start(e);
                replays[e.PersistenceId] = replay;
                order.Add(replay);
            }
            else if (replays.TryGetValue(e.PersistenceId, out var replay))
                replay.Apply(e);
        }
        for (var i = order.Count - 1; i >= 0; i--)
            if (order[i].Removed is null)
                return (order[i].State, i + 1, order.Count, order[i].PersistenceId, order[i].Created);
        return null;
    }

    public static DateTimeOffset Truncate(DateTimeOffset t) => t.AddTicks(-(t.UtcTicks % TimeSpan.TicksPerMillisecond));

    /// <summary>Every property of the qube's class: explicit values, and defaults computed by the Core model's own rules.</summary>
    /// <param name="globals">The collection (global properties) at the same moment, or null when unknown: defaults that
    /// come from a global property are then shown as unknown rather than guessed.</param>
    public static ImmutableArray<PropertyAt> Properties(QubeState qube, QubeState? template, CollectionState? globals = null)
    {
        var collection = (globals ?? CollectionState.Empty).WithQube(qube);
        if (template is not null && template.Name != qube.Name)
            collection = collection.WithQube(template);
        var templateName = qube.Class.HasTemplate() ? qube.Property("template") : null;
        var netvmUnknown = false;
        var result = ImmutableArray.CreateBuilder<PropertyAt>();
        foreach (var def in QubeProperties.For(qube.Class))
        {
            var name = def.Name;
            if (!collection.IsDefault(qube, name))
            {
                result.Add(new PropertyAt(name, Effective(collection, qube, name), PropertyAt.Set));
                continue;
            }
            if (FromTemplate.Contains(name) && templateName is not null)
            {
                if (template is null)
                {
                    result.Add(new PropertyAt(name, null, $"default (template {templateName}, not found)"));
                    continue;
                }
                if (!collection.IsDefault(template, name))
                {
                    result.Add(new PropertyAt(name, Effective(collection, template, name), $"default (template {templateName})"));
                    continue;
                }
            }
            if (GlobalDefaults.TryGetValue(name, out var global) && !(name == "netvm" && qube.Class == QubeClass.TemplateVM)
                && !(name == "default_dispvm" && qube.Class == QubeClass.DispVM))
            {
                netvmUnknown |= name == "netvm" && globals is null;
                result.Add(new PropertyAt(name, globals is null ? null : Effective(collection, qube, name), $"default (global {global})"));
                continue;
            }
            if (FromNetVm.Contains(name) && netvmUnknown)
            {
                result.Add(new PropertyAt(name, null, "default (depends on global default_netvm)"));
                continue;
            }
            result.Add(new PropertyAt(name, Effective(collection, qube, name), PropertyAt.Default));
        }
        return result.ToImmutable();
    }

    private static string? Effective(CollectionState collection, QubeState qube, string property)
    {
        try
        {
            return collection.Effective(qube, property);
        }
        catch (Exception e) when (e is KeyNotFoundException or Core.Errors.QubesError or InvalidOperationException)
        {
            // A journal value the model cannot read (e.g. a bool property with a bad literal): shown as unknown.
            return null;
        }
    }
}
