using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;

namespace QubesActors.Core.Tests.Model;

/// <summary>
/// A collection built the way qubesd builds it: every change goes through <see cref="CollectionRules"/> and is then
/// applied, so a test never reaches a state the rules would have refused.
/// </summary>
public sealed class TestWorld
{
    public static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    public static readonly EventCause Dom0 = EventCause.Admin("dom0");

    private int _uuids;

    public CollectionState State { get; private set; }

    public DateTimeOffset Now { get; set; } = T0;

    public TestWorld(CollectionState? state = null) => State = state ?? CollectionState.Empty;

    /// <summary>
    /// dom0; templates fedora and debian; sys-net (network provider, no uplink) ← sys-firewall ← work (by default);
    /// default-dvm (disposable template); default_netvm=sys-firewall, default_template=fedora, default_dispvm=default-dvm.
    /// </summary>
    public static TestWorld Installed()
    {
        var w = new TestWorld()
            .Create(QubeClass.TemplateVM, "fedora", "black")
            .Create(QubeClass.TemplateVM, "debian", "black")
            .Global("default_template", "fedora")
            .Create(QubeClass.AppVM, "sys-net", "red", null, ("provides_network", "True"), ("netvm", ""))
            .Create(QubeClass.AppVM, "sys-firewall", "green", null, ("provides_network", "True"), ("netvm", "sys-net"))
            .Global("default_netvm", "sys-firewall")
            .Create(QubeClass.AppVM, "default-dvm", "red", null, ("template_for_dispvms", "True"))
            .Global("default_dispvm", "default-dvm")
            .Create(QubeClass.AppVM, "work", "blue");
        return w;
    }

    public Guid NextUuid() => new(++_uuids, 0, 0, new byte[8]);

    public QubeState this[string name] => State.Get(name);

    public string? Effective(string qube, string property) => State.Effective(State.Get(qube), property);

    public bool IsDefault(string qube, string property) => State.IsDefault(State.Get(qube), property);

    public TestWorld Create(QubeClass cls, string name, string label = "red", string? template = null, params (string Key, string Value)[] properties)
    {
        var e = CollectionRules.CreateQube(State, cls, name, label, template,
            properties.ToDictionary(p => p.Key, p => p.Value), Dom0, Now, NextUuid());
        State = State.Apply(name, e);
        return this;
    }

    public string CreateDisposable(string template, string caller = "dom0", int dispId = 42)
    {
        var e = CollectionRules.CreateDisposable(State, template, caller, EventCause.Admin(caller), Now, NextUuid(), dispId);
        State = State.Apply(e.Name, e);
        return e.Name;
    }

    public TestWorld Set(string qube, string property, string value)
    {
        State = State.Apply(qube, CollectionRules.SetProperty(State, qube, property, value, Dom0, Now));
        return this;
    }

    public TestWorld Reset(string qube, string property)
    {
        State = State.Apply(qube, CollectionRules.ResetProperty(State, qube, property, Dom0, Now));
        return this;
    }

    public TestWorld Global(string property, string value)
    {
        State = State.Apply(CollectionRules.SetGlobal(State, property, value, Dom0, Now));
        return this;
    }

    public TestWorld ResetGlobal(string property)
    {
        State = State.Apply(CollectionRules.ResetGlobal(State, property, Dom0, Now));
        return this;
    }

    public TestWorld Feature(string qube, string feature, string value)
    {
        State = State.Apply(qube, CollectionRules.SetFeature(State, qube, feature, value, Dom0, Now));
        return this;
    }

    public TestWorld Tag(string qube, string tag)
    {
        if (CollectionRules.AddTag(State, qube, tag, "dom0", Dom0, Now) is { } e)
            State = State.Apply(qube, e);
        return this;
    }

    public TestWorld Apply(string qube, QubeEvent e)
    {
        State = State.Apply(qube, e);
        return this;
    }

    public TestWorld Start(string qube) =>
        Apply(qube, new QubeStarting(Effective(qube, "netvm")) { Time = Now, Cause = Dom0 })
            .Apply(qube, new QubeStarted(PowerState.Running) { Time = Now, Cause = Dom0 });

    public TestWorld Stop(string qube) =>
        Apply(qube, new QubeStopped(StopKind.Shutdown, null) { Time = Now, Cause = Dom0 });

    public TestWorld Remove(string qube)
    {
        CollectionRules.CheckRemove(State, qube, out _);
        return Apply(qube, new QubeRemoved { Time = Now, Cause = Dom0 });
    }

    public TestWorld AssignPci(string qube, string device) =>
        Apply(qube, new QubeDeviceAssigned("pci", device, "required", ImmutableSortedDictionary<string, string>.Empty) { Time = Now, Cause = Dom0 });
}
