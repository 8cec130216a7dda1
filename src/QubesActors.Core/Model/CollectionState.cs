using System.Collections.Immutable;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;

namespace QubesActors.Core.Model;

/// <summary>
/// The whole collection: every qube, the global properties and the labels. Immutable; the supervisor holds the
/// current value and every decision about cross-qube invariants reads it.
/// </summary>
public sealed record CollectionState
{
    public const string AdminName = "dom0";
    public static readonly Guid AdminUuid = Guid.Empty;

    public ImmutableDictionary<string, QubeState> Qubes { get; init; } = ImmutableDictionary<string, QubeState>.Empty.WithComparers(StringComparer.Ordinal);
    public ImmutableSortedDictionary<string, string> Globals { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    public ImmutableSortedDictionary<int, Label> Labels { get; init; } = Label.StandardSet;
    /// <summary>dispids of removed disposables with the time they were freed (not reused for 7 days).</summary>
    public ImmutableDictionary<int, DateTimeOffset> RecentDispIds { get; init; } = ImmutableDictionary<int, DateTimeOffset>.Empty;

    public static CollectionState Empty { get; } = new CollectionState().WithQube(AdminQube());

    public static QubeState AdminQube() => new()
    {
        Uuid = AdminUuid,
        Name = AdminName,
        Class = QubeClass.AdminVM,
        Qid = 0,
        Label = "black",
        Power = PowerState.Running,
    };

    public QubeState? Find(string name) => Qubes.TryGetValue(name, out var q) ? q : null;

    public QubeState Get(string untrustedName) => Find(untrustedName) ?? throw new QubesVMNotFoundError(untrustedName);

    public CollectionState WithQube(QubeState qube) =>
        this with { Qubes = qube.Removed ? Qubes.Remove(qube.Name) : Qubes.SetItem(qube.Name, qube) };

    public CollectionState Apply(CollectionEvent e) => e switch
    {
        GlobalPropertySet p => this with { Globals = Globals.SetItem(p.Property, p.Value) },
        GlobalPropertyReset p => this with { Globals = Globals.Remove(p.Property) },
        LabelCreated l => this with { Labels = Labels.SetItem(l.Index, new Label(l.Index, l.Name, l.Color)) },
        LabelRemoved l => this with { Labels = Labels.RemoveRange(Labels.Values.Where(x => x.Name == l.Name).Select(x => x.Index)) },
        _ => throw new InvalidOperationException($"unknown event {e.GetType().Name}"),
    };

    /// <summary>Applies an event of a qube's stream; creation adds it, removal drops it.</summary>
    public CollectionState Apply(string qubeName, QubeEvent e)
    {
        if (e is QubeCreated created)
            return WithQube(QubeState.FromCreated(created));
        var qube = Get(qubeName);
        var next = WithQube(qube.Apply(e));
        if (e is QubeRemoved && qube.DispId is { } dispId)
            next = next.WithFreedDispId(dispId, e.Time);
        return next;
    }

    /// <summary>A removed disposable's dispid is not reused for 7 days (§1.1).</summary>
    public CollectionState WithFreedDispId(int dispId, DateTimeOffset freed) =>
        this with { RecentDispIds = RecentDispIds.SetItem(dispId, freed) };

    /// <summary>Effective value of a global property: explicit, else its default (null = none / unset).</summary>
    public string? GlobalEffective(string property)
    {
        if (Globals.TryGetValue(property, out var value))
            return value.Length == 0 && GlobalProperties.All[property].Type == PropertyType.Vm ? null : value;
        return GlobalProperties.All.TryGetValue(property, out var def) ? def.Default?.Invoke(this, AdminQube()) : null;
    }

    public bool GlobalIsDefault(string property) => !Globals.ContainsKey(property);

    /// <summary>Effective value of a qube property: explicit, else the computed default. Null means none / unset.</summary>
    public string? Effective(QubeState qube, string property)
    {
        switch (property)
        {
            case "name": return qube.Name;
            case "qid": return qube.Qid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            case "uuid": return qube.Uuid.ToString();
            case "label": return qube.Label;
            case "klass": return qube.Class.ToString();
            case "icon": return Icon(qube);
            case "dispid": return qube.DispId?.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (qube.Properties.TryGetValue(property, out var value))
            return value.Length == 0 && QubeProperties.All.TryGetValue(property, out var d) && d.Type == PropertyType.Vm ? null : value;
        if (QubeProperties.All.TryGetValue(property, out var def) && def.Default is { } compute)
            return compute(this, qube);
        return null;
    }

    public bool IsDefault(QubeState qube, string property) => property switch
    {
        // dom0's uuid is the fixed default one.
        "uuid" => qube.Class == QubeClass.AdminVM,
        "name" or "qid" or "label" or "klass" or "dispid" or "template" => false,
        _ => !qube.Properties.ContainsKey(property),
    };

    public bool EffectiveBool(QubeState qube, string property) => PropertyValues.ParseBool(Effective(qube, property) ?? "False");

    public int EffectiveInt(QubeState qube, string property) =>
        int.TryParse(Effective(qube, property), System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;

    public QubeState? TemplateOf(QubeState qube) =>
        qube.Class.HasTemplate() && qube.Properties.TryGetValue("template", out var t) ? Find(t) : null;

    public QubeState? NetVmOf(QubeState qube) => qube.Class == QubeClass.AdminVM ? null : Effective(qube, "netvm") is { } n ? Find(n) : null;

    /// <summary>
    /// Service qubes (DESIGN.md): network providers, device controllers (PCI devices of their own) and qubes flagged
    /// <c>servicevm</c>. They sit under the service supervisor and restart by default.
    /// </summary>
    public bool IsServiceQube(QubeState q) =>
        q.Class != QubeClass.AdminVM && (ProvidesNetwork(q) || q.Assignments.Values.Any(a => a.DeviceClass == "pci")
                                         || q.Features.TryGetValue("servicevm", out var s) && s.Length > 0);

    public bool ProvidesNetwork(QubeState qube) => qube.Class != QubeClass.AdminVM && EffectiveBool(qube, "provides_network");

    /// <summary>Qubes whose effective netvm is <paramref name="netvm"/>.</summary>
    public IEnumerable<QubeState> ClientsOf(string netvm) =>
        Qubes.Values.Where(q => q.Class != QubeClass.AdminVM && Effective(q, "netvm") == netvm);

    /// <summary>The netvm chain from the qube upward (nearest first), excluding dom0, which is never started.</summary>
    public IReadOnlyList<QubeState> NetVmChain(QubeState qube)
    {
        var chain = new List<QubeState>();
        var seen = new HashSet<string> { qube.Name };
        for (var n = NetVmOf(qube); n is not null && n.Class != QubeClass.AdminVM && seen.Add(n.Name); n = NetVmOf(n))
            chain.Add(n);
        return chain;
    }

    public static string Icon(QubeState q) => q.Class switch
    {
        QubeClass.AdminVM => "adminvm-black",
        QubeClass.TemplateVM => $"templatevm-{q.Label}",
        QubeClass.DispVM => $"dispvm-{q.Label}",
        QubeClass.StandaloneVM => $"standalonevm-{q.Label}",
        _ when q.Properties.TryGetValue("template_for_dispvms", out var t) && PropertyValues.ParseBool(t) => $"templatevm-{q.Label}",
        _ when q.Features.TryGetValue("servicevm", out var s) && s.Length > 0 => $"servicevm-{q.Label}",
        _ => $"appvm-{q.Label}",
    };

    /// <summary>Lowest unused qid in 1..9999 (docs/qubes-semantics.md §1.1).</summary>
    public int NextQid()
    {
        var used = Qubes.Values.Select(q => q.Qid).ToHashSet();
        for (var qid = 1; qid < 10000; qid++)
            if (!used.Contains(qid))
                return qid;
        throw new QubesError("No unused qid left");
    }

    /// <summary>A random dispid in [0, 10000) not in use and not freed in the last 7 days.</summary>
    public int NextDispId(Func<int, int> random, DateTimeOffset now)
    {
        var used = Qubes.Values.Where(q => q.DispId is not null).Select(q => q.DispId!.Value).ToHashSet();
        bool Free(int id) => !used.Contains(id) && !(RecentDispIds.TryGetValue(id, out var freed) && now - freed < TimeSpan.FromDays(7))
                             && !Qubes.ContainsKey($"disp{id}");
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var id = random(10000);
            if (Free(id))
                return id;
        }
        for (var id = 0; id < 10000; id++)
            if (Free(id))
                return id;
        throw new QubesError("No unused dispid left");
    }
}
