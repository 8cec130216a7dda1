using System.Globalization;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>admin.vmclass.List, admin.vm.List, admin.vm.Create.*, admin.vm.Remove, admin.vm.CurrentState.</summary>
public static class VmMethods
{
    /// <summary>Classes that can be listed (and, but for AdminVM, created), sorted like upstream's entry points.</summary>
    public static readonly IReadOnlyList<QubeClass> Classes =
        [.. Enum.GetValues<QubeClass>().OrderBy(c => c.ToString(), StringComparer.Ordinal)];

    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.vmclass.List", DestinationKind.AdminVm, (_, _) => Ok(Lines(Classes.Select(c => c.ToString()))), scope: MethodScope.Global),
        Read("admin.vm.List", DestinationKind.Any, List, scope: MethodScope.Global),
        .. Classes.Where(c => c != QubeClass.AdminVM).Select(c => Write($"admin.vm.Create.{c}", DestinationKind.AdminVm,
            (call, ct) => Create(call, c, ct), arg: c.HasTemplate() ? Presence.Optional : Presence.None, payload: Presence.Required, scope: MethodScope.Global)),
        Write("admin.vm.CreateDisposable", DestinationKind.Any, CreateDisposable, payload: Presence.Optional, scope: MethodScope.Global),
        Write("admin.vm.Remove", DestinationKind.Any, (call, ct) => Send(call, new QubesProtocol.RemoveQube(call.Dest.Name, call.Caller), ct)),
        Read("admin.vm.CurrentState", DestinationKind.Any, (call, _) => Ok(CurrentState(call.State, call.Dest))),
    ];

    /// <summary><c>&lt;name&gt; class=&lt;Class&gt; state=&lt;State&gt; uuid=&lt;uuid&gt;</c> per qube: all for dom0, else only the destination.</summary>
    private static Task<AdminReply> List(AdminCall call, CancellationToken _) =>
        call.DestIsAdmin ? Cached(call.State, "admin.vm.List", FullList) : Ok(ListLine(call.Dest) + "\n");

    private static string FullList(CollectionState state)
    {
        var qubes = state.Qubes.Values.ToArray();
        Array.Sort(qubes, static (a, b) => (a.Class == QubeClass.AdminVM, b.Class == QubeClass.AdminVM) switch
        {
            (true, false) => -1,
            (false, true) => 1,
            _ => string.CompareOrdinal(a.Name, b.Name),
        });
        var text = new System.Text.StringBuilder(qubes.Length * 80);
        foreach (var q in qubes)
            text.Append(ListLine(q)).Append('\n');
        return text.ToString();
    }

    public static string ListLine(QubeState q) => $"{q.Name} class={q.Class} state={q.Power.Wire()} uuid={q.Uuid}";

    /// <summary>
    /// Creates <c>dispNNNN</c> from the destination (a disposable template), or from the caller's default_dispvm when
    /// the destination is dom0; answers its name, or <c>uuid:&lt;uuid&gt;</c> when the payload is <c>uuid</c>.
    /// </summary>
    private static async Task<AdminReply> CreateDisposable(AdminCall call, CancellationToken ct)
    {
        var payload = call.UntrustedPayloadAscii();
        if (payload is not ("" or "uuid"))
            throw new ProtocolError("Invalid payload for admin.vm.CreateDisposable");
        var result = await call.Qubes.SendAsync(new QubesProtocol.CreateDisposable(call.Dest.Name, call.Caller), call.CommandTimeout, ct).ConfigureAwait(false);
        if (result is QubesProtocol.Refused refused)
            return new AdminReply.Failed(refused.Error);
        var name = ((QubesProtocol.Done)result).Output;
        if (payload != "uuid")
            return new AdminReply.Ok(name);
        var created = (await call.Qubes.SnapshotAsync(ct).ConfigureAwait(false)).State.Get(name);
        return new AdminReply.Ok($"uuid:{created.Uuid}");
    }

    /// <summary>Payload <c>name=&lt;n&gt; label=&lt;l&gt;</c>; the argument names the template (optional).</summary>
    private static Task<AdminReply> Create(AdminCall call, QubeClass cls, CancellationToken ct)
    {
        var (name, label) = ParseCreatePayload(call.UntrustedPayloadAscii());
        var template = call.Arg.Length == 0 ? null : call.Arg;
        // Upstream returns nothing; the supervisor's output (the name) is not part of the wire answer.
        return Send(call, new QubesProtocol.CreateQube(cls, name, label, template, NoProperties, call.Caller), ct, keepOutput: false);
    }

    public static (string Name, string Label) ParseCreatePayload(string untrustedPayload)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var untrustedParam in untrustedPayload.Split(' '))
        {
            var eq = untrustedParam.IndexOf('=');
            if (eq < 0)
                throw new ProtocolError("Invalid param, expected key=value");
            var key = untrustedParam[..eq];
            if (key is not ("name" or "label"))
                throw new ProtocolError("Invalid param name");
            if (!values.TryAdd(key, untrustedParam[(eq + 1)..]))
                throw new ProtocolError("duplicated parameters");
        }
        if (!values.TryGetValue("name", out var name) || !values.TryGetValue("label", out var label))
            throw new ProtocolError("Missing name or label");
        return (name, label);
    }

    /// <summary><c>mem=… mem_static_max=… cputime=… power_state=…</c>; the simulated domain reports its configured memory while active.</summary>
    public static string CurrentState(CollectionState state, QubeState q)
    {
        long mem = 0, max = 0;
        if (q.Power.IsActive() && q.Class != QubeClass.AdminVM)
        {
            mem = state.EffectiveInt(q, "memory") * 1024L;
            var maxmem = state.EffectiveInt(q, "maxmem");
            max = (maxmem > 0 ? maxmem : state.EffectiveInt(q, "memory")) * 1024L;
        }
        else if (q.Class == QubeClass.AdminVM)
        {
            max = long.Parse(state.GlobalEffective("maxmem") ?? "0", CultureInfo.InvariantCulture) * 1024L;
            mem = max;
        }
        // The simulated backend does not account CPU time.
        return $"mem={mem} mem_static_max={max} cputime=0 power_state={q.Power.Wire()}";
    }
}
