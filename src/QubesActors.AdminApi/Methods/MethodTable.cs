using System.Collections.Frozen;
using QubesActors.AdminApi.Wire;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// The admin.* methods by name, and the generic validation every call passes before its handler
/// (docs/qubes-semantics.md §6.1): unknown method, destination kind, argument and payload presence.
/// Unknown source/destination qubes are checked by <see cref="AdminDispatcher"/> against the snapshot.
/// </summary>
public sealed class MethodTable
{
    private readonly FrozenDictionary<string, AdminMethod> _methods;

    public MethodTable(IEnumerable<AdminMethod> methods)
    {
        var byName = new Dictionary<string, AdminMethod>(StringComparer.Ordinal);
        foreach (var m in methods)
        {
            if (!byName.TryAdd(m.Name, m))
                throw new ArgumentException($"method {m.Name} registered twice", nameof(methods));
            if (m.AllowedArgs is not null && m.Arg == Presence.None)
                throw new ArgumentException($"method {m.Name} lists allowed arguments but takes none", nameof(methods));
        }
        _methods = byName.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Every method this build implements.</summary>
    public static MethodTable Default { get; } = new(
    [
        .. VmMethods.All,
        .. PropertyMethods.All,
        .. FeatureTagMethods.All,
        .. LifecycleMethods.All,
        .. EventsMethod.All,
        .. StatsMethod.All,
        .. FirewallMethods.All,
        .. DeviceMethods.All,
        .. LabelNotesMethods.All,
        .. VolumeMethods.All,
        .. PolicyMethods.All,
    ]);

    public IEnumerable<AdminMethod> Methods => _methods.Values.OrderBy(m => m.Name, StringComparer.Ordinal);

    public AdminMethod? Find(string untrustedName) => _methods.TryGetValue(untrustedName, out var m) ? m : null;

    public AdminMethod Resolve(string untrustedName) => Find(untrustedName) ?? throw new ProtocolError("no such method");

    /// <summary>
    /// Who may make the call. dom0's tools are trusted (the socket is 0660, root and group only). A qube as source is a
    /// call relayed by qrexec: Qubes' default policy denies every admin.* call from a qube, and so does this until
    /// the qrexec policy (issue 4) decides per method, scope and destination from this row.
    /// </summary>
    public static void Authorize(AdminMethod method, QubeState source, QubeState dest)
    {
        if (source.Class == QubeClass.AdminVM)
            return;
        throw new PermissionDenied($"{method.Name} from {source.Name} to {dest.Name} denied by policy");
    }

    /// <summary>The checks driven by the row; throws the §6.1 error of the first that fails.</summary>
    public static void Validate(AdminMethod method, AdminRequest request, QubeState dest)
    {
        var isAdmin = dest.Class == QubeClass.AdminVM;
        switch (method.Destination)
        {
            case DestinationKind.AdminVm when !isAdmin:
                throw new ProtocolError("expected destination to be AdminVM");
            case DestinationKind.NotAdminVm when isAdmin:
                throw new ProtocolError("expected destination to not be AdminVM");
        }
        switch (method.Arg)
        {
            case Presence.None when request.Arg.Length > 0:
                throw new ProtocolError("unexpected argument");
            case Presence.Required when request.Arg.Length == 0:
                throw new ProtocolError("expected an argument");
        }
        if (method.AllowedArgs is { } allowed && !allowed.Contains(request.Arg))
            throw new ProtocolError($"invalid argument for {method.Name}: {request.Arg}");
        switch (method.Payload)
        {
            case Presence.None when request.UntrustedPayload.Length > 0:
                throw new ProtocolError("unexpected payload");
            case Presence.Required when request.UntrustedPayload.Length == 0:
                throw new ProtocolError("expected payload");
        }
    }
}
