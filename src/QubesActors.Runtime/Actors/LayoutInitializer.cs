using System.Collections.Immutable;
using Akka.Actor;
using QubesActors.Core.Errors;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Actors;

/// <summary>
/// Creates the first-start layout through the ordinary commands, one at a time, so it is validated and journaled
/// exactly like an administrator's calls; stops at the first refusal and reports it.
/// </summary>
public sealed class LayoutInitializer : ReceiveActor
{
    private readonly IActorRef _collection;
    private readonly IActorRef _replyTo;
    private readonly Queue<IQubesCommand> _steps = new();

    public LayoutInitializer(IActorRef collection, LayoutSpec layout, IActorRef replyTo)
    {
        _collection = collection;
        _replyTo = replyTo;
        var caller = Caller.Dom0;
        foreach (var q in layout.Qubes)
        {
            _steps.Enqueue(new CreateQube(q.Class, q.Name, q.Label, q.Template, q.Properties, caller));
            foreach (var (feature, value) in q.Features)
                _steps.Enqueue(new SetFeature(q.Name, feature, value, caller));
            foreach (var tag in q.Tags)
                _steps.Enqueue(new AddTag(q.Name, tag, caller));
            foreach (var d in q.Devices)
                _steps.Enqueue(new AssignDevice(q.Name, d.DeviceClass, d.Device, d.Mode, d.Options.ToImmutableSortedDictionary(), caller));
        }
        foreach (var (property, value) in layout.Globals)
            _steps.Enqueue(new SetGlobalProperty(property, value, caller));

        Receive<CommandResult>(result =>
        {
            if (result is Refused r)
            {
                _replyTo.Tell(new Refused(new QubesError($"layout: {r.Error.QubesClassName}: {r.Error.Message}")));
                Context.Stop(Self);
                return;
            }
            Next();
        });
    }

    protected override void PreStart() => Next();

    private void Next()
    {
        if (_steps.Count == 0)
        {
            _replyTo.Tell(new Done());
            Context.Stop(Self);
            return;
        }
        _collection.Tell(_steps.Dequeue());
    }
}
