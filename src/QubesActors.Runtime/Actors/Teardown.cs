using Akka.Actor;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Actors;

/// <summary>
/// Shuts everything down in reverse dependency order: in waves, each wave being the running qubes that no running
/// qube uses as its netvm (app qubes, then firewalls, then net). Lives only for one teardown.
/// </summary>
public sealed class Teardown : ReceiveActor
{
    private readonly IActorRef _collection;
    private readonly bool _force;
    private readonly Caller _caller;
    private readonly IActorRef _replyTo;
    private readonly List<string> _order = [];
    private readonly List<string> _errors = [];
    /// <summary>Every qube asked once: one that is still up after its answer (refused, e.g. paused) is not asked again.</summary>
    private readonly HashSet<string> _asked = new(StringComparer.Ordinal);
    private int _waiting;
    private int _wave;

    public Teardown(IActorRef collection, bool force, Caller caller, IActorRef replyTo)
    {
        _collection = collection;
        _force = force;
        _caller = caller;
        _replyTo = replyTo;
        Receive<CollectionSnapshot>(OnSnapshot);
        Receive<Answered>(OnResult);
    }

    protected override void PreStart() => _collection.Tell(new GetCollection());

    /// <summary>The next wave: active qubes (not dom0) that no other active qube depends on for network.</summary>
    public static IReadOnlyList<string> NextWave(CollectionState c)
    {
        var active = c.Qubes.Values.Where(q => q.Class != QubeClass.AdminVM && q.Power.IsActive()).ToList();
        var used = active.SelectMany(q => new[] { q.ConnectedNetVm, c.Effective(q, "netvm") }).Where(n => n is not null).ToHashSet();
        var wave = active.Where(q => !used.Contains(q.Name)).Select(q => q.Name).Order(StringComparer.Ordinal).ToList();
        return wave.Count > 0 || active.Count == 0 ? wave : [.. active.Select(q => q.Name).Order(StringComparer.Ordinal)];
    }

    private void OnSnapshot(CollectionSnapshot snapshot)
    {
        var wave = NextWave(snapshot.State).Where(n => !snapshot.Quarantined.ContainsKey(n) && !_asked.Contains(n)).ToList();
        if (wave.Count == 0 || ++_wave > 64)
        {
            _replyTo.Tell(_errors.Count == 0
                ? new Done(string.Join("\n", _order))
                : new Refused(new QubesVMError($"Failed to shut down: {string.Join("; ", _errors)}")));
            Context.Stop(Self);
            return;
        }
        _waiting = wave.Count;
        foreach (var name in wave)
        {
            _order.Add(name);
            _asked.Add(name);
            _collection.Ask<CommandResult>(new ShutdownQube(name, _force, Wait: true, _caller))
                .PipeTo(Self, success: result => new Answered(name, result), failure: ex => new Answered(name, new Refused(new QubesError(ex.Message))));
        }
    }

    private sealed record Answered(string Name, CommandResult Result);

    private void OnResult(Answered answered)
    {
        // Only "powered off" (already halted) is no failure; its subclasses (paused, ...) are.
        if (answered.Result is Refused r && r.Error.GetType() != typeof(QubesVMNotStartedError))
            _errors.Add($"{answered.Name}: {r.Error.Message}");
        if (--_waiting == 0)
            _collection.Tell(new GetCollection());
    }
}
