using System.Collections.Immutable;
using QubesActors.Audit.Journal;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Policy;

namespace QubesActors.Audit.Timeline;

/// <summary>
/// One qube name's figures over the whole journal (every life of the name). <see cref="Events"/> is what "busiest"
/// sorts by: the events of its own streams plus the policy decisions naming it as source or target.
/// <see cref="RunningTime"/> is the time it was active (Running, Paused, Suspended, Transient or Halting: qubesd's
/// is_running), an active span still open counting up to now. A restart loop is the supervisor giving up
/// (<c>qube.failed</c>: the restart limit was hit).
/// </summary>
public sealed record QubeStats(
    string Name,
    string Label,
    string Status,
    long Events,
    DateTimeOffset? LastStart,
    TimeSpan RunningTime,
    int Starts,
    int Crashes,
    int RestartsScheduled,
    int RestartLoops,
    int Denied,
    int Lives);

/// <summary>Aggregates <see cref="QubeStats"/> from every event in global order; memory grows with qubes, not events.</summary>
public sealed class StatsAggregator
{
    private sealed class Entry(string name)
    {
        public string Name { get; } = name;
        public QubeReplay? Current { get; set; }
        public long Events { get; set; }
        public DateTimeOffset? LastStart { get; set; }
        public TimeSpan RunningTime { get; set; }
        public int Starts { get; set; }
        public int Crashes { get; set; }
        public int RestartsScheduled { get; set; }
        public int RestartLoops { get; set; }
        public int Denied { get; set; }
        public int Lives { get; set; }
    }

    private readonly Dictionary<string, Entry> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (QubeReplay Replay, Entry Entry)> _byStream = new(StringComparer.Ordinal);

    public void Add(AuditEvent e)
    {
        if (e.Event is PolicyDecisionRecorded p)
        {
            // Targets as the caller named them may be tokens (@default, @dispvm:x): only known qubes and the source count.
            foreach (var named in e.Qubes)
                if (named == p.Source || _byName.ContainsKey(named))
                    EntryOf(named).Events++;
            if (QubeHistoryBuilder.IsDenial(p))
                EntryOf(p.Source).Denied++;
            return;
        }
        if (e.Event is QubeCreated)
        {
            var entry = EntryOf(e.Qube);
            var replay = QubeReplay.Start(e);
            entry.Current = replay;
            entry.Lives++;
            entry.Events++;
            _byStream[e.PersistenceId] = (replay, entry);
            return;
        }
        if (!_byStream.TryGetValue(e.PersistenceId, out var stream))
            return;
        var (r, owner) = stream;
        owner.Events++;
        switch (e.Event)
        {
            case QubeStarted:
                owner.Starts++;
                owner.LastStart = e.Time;
                break;
            case QubeStopped { Kind: StopKind.Crashed }:
                owner.Crashes++;
                break;
            case QubeRestartScheduled:
                owner.RestartsScheduled++;
                break;
            case QubeFailed:
                owner.RestartLoops++;
                break;
        }
        if (r.Apply(e) is { } closed && closed.State.IsActive())
            owner.RunningTime += closed.Duration;
    }

    private Entry EntryOf(string name)
    {
        if (!_byName.TryGetValue(name, out var entry))
            _byName[name] = entry = new Entry(name);
        return entry;
    }

    /// <summary>Busiest first (most events), then by name; open active spans count up to <paramref name="now"/>.</summary>
    public ImmutableArray<QubeStats> Build(DateTimeOffset now)
    {
        var openRunning = new Dictionary<Entry, TimeSpan>();
        foreach (var (replay, owner) in _byStream.Values)
            if (replay.OpenSpan(now) is { } open && open.State.IsActive())
                openRunning[owner] = openRunning.GetValueOrDefault(owner) + open.Duration;
        return
        [
            .. _byName.Values.Select(e =>
            {
                var running = e.RunningTime + openRunning.GetValueOrDefault(e);
                var status = e.Current is null ? "-" : e.Current.Removed is not null ? "removed" : e.Current.State.Power.Wire() + (e.Current.State.Failed ? " (failed)" : "");
                return new QubeStats(e.Name, e.Current?.State.Label ?? "", status, e.Events, e.LastStart, running, e.Starts, e.Crashes,
                    e.RestartsScheduled, e.RestartLoops, e.Denied, e.Lives);
            })
            .OrderByDescending(s => s.Events).ThenBy(s => s.Name, StringComparer.Ordinal),
        ];
    }
}
