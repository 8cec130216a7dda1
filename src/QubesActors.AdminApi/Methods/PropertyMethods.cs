using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>admin.vm.property.* (any qube, dom0 included) and admin.property.* (global, dest dom0).</summary>
public static class PropertyMethods
{
    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.vm.property.List", DestinationKind.Any, (call, _) => Ok(Lines(QubeProperties.For(call.Dest.Class).Select(p => p.Name)))),
        Read("admin.vm.property.Get", DestinationKind.Any, (call, _) => Ok(QubeValue(call.State, call.Dest, call.Arg)), arg: Presence.Required),
        Read("admin.vm.property.GetAll", DestinationKind.Any, (call, _) =>
            Cached(call.State, "admin.vm.property.GetAll " + call.Dest.Name, state => Lines(QubeProperties.For(call.Dest.Class)
                .Select(p => $"{p.Name} {Escape(QubeValue(state, call.Dest, p.Name))}")))),
        Write("admin.vm.property.Set", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.SetProperty(call.Dest.Name, call.Arg, call.UntrustedPayloadAscii(), call.Caller), ct),
            arg: Presence.Required, payload: Presence.Optional),
        Write("admin.vm.property.Reset", DestinationKind.Any, (call, ct) =>
            Send(call, new QubesProtocol.ResetProperty(call.Dest.Name, call.Arg, call.Caller), ct), arg: Presence.Required),
        Read("admin.vm.property.GetDefault", DestinationKind.Any, (call, _) => Ok(QubeDefault(call.State, call.Dest, call.Arg)), arg: Presence.Required),
        Read("admin.vm.property.Help", DestinationKind.Any, (call, _) => Ok(QubeProperties.Get(call.Dest, call.Arg).Help), arg: Presence.Required),

        Read("admin.property.List", DestinationKind.AdminVm, (_, _) => Ok(Lines(GlobalProperties.All.Keys)), scope: MethodScope.Global),
        Read("admin.property.Get", DestinationKind.AdminVm, (call, _) => Ok(GlobalValue(call.State, call.Arg)), arg: Presence.Required, scope: MethodScope.Global),
        Read("admin.property.GetAll", DestinationKind.AdminVm, (call, _) =>
            Ok(Lines(GlobalProperties.All.Keys.Select(p => $"{p} {Escape(GlobalValue(call.State, p))}"))), scope: MethodScope.Global),
        Write("admin.property.Set", DestinationKind.AdminVm, (call, ct) =>
            Send(call, new QubesProtocol.SetGlobalProperty(call.Arg, call.UntrustedPayloadAscii(), call.Caller), ct),
            arg: Presence.Required, payload: Presence.Optional, scope: MethodScope.Global),
        Write("admin.property.Reset", DestinationKind.AdminVm, (call, ct) =>
            Send(call, new QubesProtocol.ResetGlobalProperty(call.Arg, call.Caller), ct), arg: Presence.Required, scope: MethodScope.Global),
        Read("admin.property.GetDefault", DestinationKind.AdminVm, (call, _) => Ok(GlobalDefault(call.State, call.Arg)), arg: Presence.Required, scope: MethodScope.Global),
        Read("admin.property.Help", DestinationKind.AdminVm, (call, _) => Ok(GlobalProperties.Get(call.Arg).Help), arg: Presence.Required, scope: MethodScope.Global),
    ];

    /// <summary>
    /// <c>type=&lt;t&gt; &lt;value&gt;</c>: what the property would be if reset, whatever it is now; nothing when the
    /// property has no default (name, qid, label, ...) or its default is none.
    /// </summary>
    public static string QubeDefault(CollectionState state, QubeState qube, string untrustedProperty)
    {
        var def = QubeProperties.Get(qube, untrustedProperty);
        if (def.Default is null || def.WriteOnce)
            return "";
        var reset = qube with { Properties = qube.Properties.Remove(def.Name) };
        return state.Effective(reset, def.Name) is { } value ? $"type={def.TypeName} {value}" : "";
    }

    public static string GlobalDefault(CollectionState state, string untrustedProperty)
    {
        var def = GlobalProperties.Get(untrustedProperty);
        return def.Default?.Invoke(state, CollectionState.AdminQube()) is { } value ? $"type={def.TypeName} {value}" : "";
    }

    /// <summary><c>default=&lt;True|False&gt; type=&lt;t&gt; &lt;value&gt;</c>; none is an empty value (<c>default=True type=vm </c>).</summary>
    public static string QubeValue(CollectionState state, QubeState qube, string untrustedProperty)
    {
        var def = QubeProperties.Get(qube, untrustedProperty);
        return Format(state.IsDefault(qube, def.Name), def, state.Effective(qube, def.Name));
    }

    public static string GlobalValue(CollectionState state, string untrustedProperty)
    {
        var def = GlobalProperties.Get(untrustedProperty);
        return Format(state.GlobalIsDefault(def.Name), def, state.GlobalEffective(def.Name));
    }

    private static string Format(bool isDefault, PropertyDef def, string? value) =>
        $"default={PropertyValues.Bool(isDefault)} type={def.TypeName} {value ?? ""}";

    /// <summary>GetAll puts one property per line: backslash as <c>\\</c>, newline as <c>\n</c>.</summary>
    public static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\n", "\\n");
}
