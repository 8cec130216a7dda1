using QubesActors.Audit.Journal;
using QubesActors.Core.Events;
using QubesActors.Core.Model;

namespace QubesActors.Audit.Timeline;

/// <summary>
/// One qube stream (one life of a qube) replayed with the Core model's own <see cref="QubeState.Apply"/>, the code
/// qubesd recovers with, so the viewer cannot disagree with the daemon about what an event means. Each change of
/// <see cref="QubeState.Power"/> closes a <see cref="PowerSpan"/>.
/// </summary>
public sealed class QubeReplay
{
    private DateTimeOffset _spanStart;

    private QubeReplay(string persistenceId, QubeCreated created)
    {
        PersistenceId = persistenceId;
        State = QubeState.FromCreated(created);
        Created = created.Time;
        _spanStart = created.Time;
    }

    public string PersistenceId { get; }
    public QubeState State { get; private set; }
    public DateTimeOffset Created { get; }
    public DateTimeOffset? Removed { get; private set; }
    /// <summary>Events the model refused (an illegal transition: a hand-edited or damaged journal); the state is kept.</summary>
    public List<string> Anomalies { get; } = [];
    public DateTimeOffset LastEventTime { get; private set; }

    public static QubeReplay Start(AuditEvent created) =>
        new(created.PersistenceId, (QubeCreated)created.Event) { LastEventTime = created.Time };

    /// <summary>Applies the next event of the stream; returns the span it closed, if the power state changed.</summary>
    public PowerSpan? Apply(AuditEvent e)
    {
        if (e.Event is not QubeEvent qubeEvent || e.Event is QubeCreated || Removed is not null)
            return null;
        LastEventTime = e.Time;
        var before = State.Power;
        try
        {
            State = State.Apply(qubeEvent);
        }
        catch (InvalidOperationException refused)
        {
            Anomalies.Add($"{AuditDetails.FormatTime(e.Time)} {e.Name}: {refused.Message}");
            return null;
        }
        if (qubeEvent is QubeRemoved)
        {
            Removed = e.Time;
            return Close(e.Time);
        }
        return State.Power == before ? null : Close(e.Time, before);
    }

    /// <summary>The span in progress, ended at <paramref name="now"/>; null once the qube is removed.</summary>
    public PowerSpan? OpenSpan(DateTimeOffset now) =>
        Removed is null ? new PowerSpan(State.Power, _spanStart, now < _spanStart ? _spanStart : now, Open: true) : null;

    private PowerSpan Close(DateTimeOffset at, PowerState? state = null)
    {
        var span = new PowerSpan(state ?? State.Power, _spanStart, at, Open: false);
        _spanStart = at;
        return span;
    }
}
