using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Core.Model;

namespace QubesActors.Runtime.Persistence;

/// <summary>
/// Builds the collection from a bulk-loaded journal: applies every stream with the same Apply as live operation and
/// quarantines, with the reason, each qube whose stream is broken or cannot be applied. Pure: the supervisor and
/// <c>qubesd --check</c> both use it.
/// </summary>
public static class CollectionRecovery
{
    public sealed record Result(
        CollectionState State,
        ImmutableSortedDictionary<string, string> Quarantined,
        ImmutableDictionary<string, LoadedStream> Streams,
        ImmutableArray<string> Problems);

    public static Result Recover(LoadedJournal journal)
    {
        var view = CollectionState.Empty;
        var problems = ImmutableArray.CreateBuilder<string>();
        var quarantined = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var streams = ImmutableDictionary.CreateBuilder<string, LoadedStream>(StringComparer.Ordinal);
        if (journal.Collection is { } collection)
        {
            if (collection.IsBroken)
                problems.Add($"collection stream: {collection.Broken}");
            foreach (var e in collection.Events.Cast<CollectionEvent>())
                view = view.Apply(e);
        }
        foreach (var stream in journal.Qubes)
        {
            QubeState initial;
            IEnumerable<DomainEvent> rest;
            if (stream.Snapshot is { } snapshot)
            {
                initial = snapshot.State;
                rest = stream.Events;
            }
            else if (stream.Events.Count > 0 && stream.Events[0] is QubeCreated created)
            {
                initial = QubeState.FromCreated(created);
                rest = stream.Events.Skip(1);
            }
            else
            {
                problems.Add($"{stream.PersistenceId}: does not start with its creation{(stream.Broken is null ? "" : $" ({stream.Broken})")}");
                continue;
            }
            QubeState state;
            var problem = stream.Broken;
            try
            {
                state = rest.Cast<QubeEvent>().Aggregate(initial, (s, e) => s.Apply(e));
            }
            catch (Exception ex) when (ex is InvalidOperationException or NullReferenceException or ArgumentException)
            {
                // One unreadable stream quarantines its qube; it never stops the recovery of the others.
                state = initial;
                problem = ex.Message;
            }
            if (state.Removed && problem is null)
            {
                // A removed disposable's dispid stays reserved for 7 days (§1.1).
                if (state.DispId is { } dispId && stream.Events.LastOrDefault() is { } last)
                    view = view.WithFreedDispId(dispId, last.Time);
                continue;
            }
            if (problem is not null)
            {
                quarantined[state.Name] = problem;
                problems.Add($"{state.Name} ({stream.PersistenceId}): {problem}");
            }
            // Two live streams under one name (a create retried after a write with an unknown outcome): keep the first,
            // quarantine the other under a name of its own so that neither is lost and both are visible.
            if (view.Find(state.Name) is { } existing && existing.Uuid != state.Uuid)
            {
                var alias = $"{state.Name}~{state.Uuid.ToString("N")[..8]}";
                problems.Add($"{state.Name} ({stream.PersistenceId}): a second qube with this name; shown as {alias}");
                quarantined[alias] = $"duplicate of the name '{state.Name}' ({stream.PersistenceId})";
                state = state with { Name = alias };
            }
            view = view.WithQube(state with { Removed = false });
            streams[state.Name] = stream;
        }
        foreach (var qube in view.Qubes.Values)
            foreach (var property in new[] { "template", "netvm", "default_dispvm" })
                if (qube.Properties.TryGetValue(property, out var target) && target.Length > 0 && view.Find(target) is null)
                    problems.Add($"{qube.Name}: {property} points to missing qube '{target}'");
        return new Result(view, quarantined.ToImmutable(), streams.ToImmutable(), problems.ToImmutable());
    }
}
