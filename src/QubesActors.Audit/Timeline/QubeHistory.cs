using System.Collections.Immutable;
using QubesActors.Audit.Journal;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Policy;

namespace QubesActors.Audit.Timeline;

/// <summary>What happened around a qube's restarts, counted over one life.</summary>
public sealed record LifeCounts(int Starts, int Crashes, int RestartsScheduled, int RestartLimitHits, int StartFailures, int PolicyDecisions, int Denials);

/// <summary>
/// One life of a qube: one stream, from its creation to its removal (a name that was removed and created again has
/// several). <see cref="Events"/> are its stream's events and the policy decisions naming it, in global order.
/// </summary>
public sealed record QubeLife(
    string PersistenceId,
    Guid Uuid,
    QubeClass Class,
    DateTimeOffset Created,
    DateTimeOffset? Removed,
    ImmutableArray<PowerSpan> Spans,
    ImmutableArray<AuditEvent> Events,
    ImmutableArray<string> Anomalies,
    LifeCounts Counts)
{
    /// <summary>The events that explain restarts: unasked stops (crash reasons), failed starts, scheduled restarts, the restart limit.</summary>
    public IEnumerable<AuditEvent> RestartEvents => Events.Where(IsRestartEvent);

    public static bool IsRestartEvent(AuditEvent e) => e.Event switch
    {
        QubeStopped s => s.Kind == StopKind.Crashed || s.Cause.Kind == EventCause.BackendKind,
        QubeStartFailed or QubeRestartScheduled or QubeFailed or QubeFailedReset => true,
        QubeStarted s => s.Cause.Kind == EventCause.SupervisorKind,
        _ => false,
    };
}

/// <summary>Every life of one qube name, oldest first.</summary>
public sealed record QubeHistory(string Name, ImmutableArray<QubeLife> Lives);

/// <summary>
/// Builds a <see cref="QubeHistory"/> from the events that concern one name, fed in global order (what
/// <c>JournalReader.CurrentOfQubesAsync</c> yields). A life begins with a <c>qube.created</c> under that name; a policy
/// decision goes to the life that existed at its time (else the nearest earlier one, else the first).
/// </summary>
public sealed class QubeHistoryBuilder(string name)
{
    private sealed class Life(QubeReplay replay)
    {
        public QubeReplay Replay { get; } = replay;
        public List<PowerSpan> Spans { get; } = [];
        public List<AuditEvent> Events { get; } = [];
    }

    private readonly Dictionary<string, Life> _byStream = new(StringComparer.Ordinal);
    private readonly List<Life> _lives = [];
    private readonly List<AuditEvent> _decisions = [];

    public string Name => name;

    public void Add(AuditEvent e)
    {
        if (e.Event is PolicyDecisionRecorded)
        {
            _decisions.Add(e);
            return;
        }
        if (e.Event is QubeCreated created && string.Equals(created.Name, name, StringComparison.Ordinal))
        {
            var life = new Life(QubeReplay.Start(e));
            life.Events.Add(e);
            _byStream[e.PersistenceId] = life;
            _lives.Add(life);
            return;
        }
        // A stream renamed to this name has no creation under it: it is not one of this name's lives.
        if (_byStream.TryGetValue(e.PersistenceId, out var current))
        {
            current.Events.Add(e);
            if (current.Replay.Apply(e) is { } closed)
                current.Spans.Add(closed);
        }
    }

    /// <summary>The lives so far; a span still in progress ends at <paramref name="now"/>.</summary>
    public QubeHistory Build(DateTimeOffset now)
    {
        var decisionsByLife = _lives.ToDictionary(l => l, _ => new List<AuditEvent>());
        if (_lives.Count > 0)
            foreach (var d in _decisions)
                decisionsByLife[LifeAt(d.Time) ?? _lives[0]].Add(d);
        var lives = _lives.Select(l =>
        {
            var spans = l.Replay.OpenSpan(now) is { } open ? [.. l.Spans, open] : l.Spans.ToList();
            var decisions = decisionsByLife[l];
            var events = l.Events.Concat(decisions).OrderBy(e => e.Ordering).ToImmutableArray();
            return new QubeLife(l.Replay.PersistenceId, l.Replay.State.Uuid, l.Replay.State.Class, l.Replay.Created, l.Replay.Removed,
                [.. spans], events, [.. l.Replay.Anomalies], Count(l.Events, decisions));
        });
        return new QubeHistory(name, [.. lives]);
    }

    private Life? LifeAt(DateTimeOffset time) =>
        _lives.LastOrDefault(l => l.Replay.Created <= time && (l.Replay.Removed is null || time <= l.Replay.Removed))
        ?? _lives.LastOrDefault(l => l.Replay.Created <= time);

    private LifeCounts Count(List<AuditEvent> stream, List<AuditEvent> decisions) => new(
        Starts: stream.Count(e => e.Event is QubeStarted),
        Crashes: stream.Count(e => e.Event is QubeStopped { Kind: StopKind.Crashed }),
        RestartsScheduled: stream.Count(e => e.Event is QubeRestartScheduled),
        RestartLimitHits: stream.Count(e => e.Event is QubeFailed),
        StartFailures: stream.Count(e => e.Event is QubeStartFailed),
        PolicyDecisions: decisions.Count,
        Denials: decisions.Count(e => e.Event is PolicyDecisionRecorded p && IsDenial(p) && p.Source == name));

    public static bool IsDenial(PolicyDecisionRecorded p) => string.Equals(p.Result, "deny", StringComparison.OrdinalIgnoreCase);
}
