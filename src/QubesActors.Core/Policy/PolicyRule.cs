using System.Collections.Immutable;

namespace QubesActors.Core.Policy;

public enum PolicyAction
{
    Allow,
    Deny,
    Ask,
}

/// <summary>
/// One rule as loaded. <paramref name="Service"/> is <c>*</c> or a service name, <paramref name="Argument"/> <c>*</c> or
/// <c>+…</c>; <paramref name="Redirect"/> is <c>target=</c>, <paramref name="DefaultTarget"/> <c>default_target=</c>,
/// <paramref name="User"/> null for the target's default user; <paramref name="Notify"/>/<paramref name="Autostart"/>
/// with the per-action defaults applied; <paramref name="Params"/> the parameter words as written.
/// </summary>
public sealed record PolicyRule(
    string Service,
    string Argument,
    PolicyToken Source,
    PolicyToken Target,
    PolicyAction Action,
    PolicyToken? Redirect,
    PolicyToken? DefaultTarget,
    string? User,
    bool Notify,
    bool Autostart,
    ImmutableArray<string> Params,
    PolicyLocation Location)
{
    public bool AnyService => Service == "*";
    public bool AnyArgument => Argument == "*";

    public override string ToString()
    {
        var action = Action.ToString().ToLowerInvariant();
        return Params.IsEmpty
            ? $"{Service}\t{Argument}\t{Source}\t{Target}\t{action}"
            : $"{Service}\t{Argument}\t{Source}\t{Target}\t{action} {string.Join(' ', Params)}";
    }
}
