using System.Collections.Immutable;
using QubesActors.Core.Events;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;

namespace QubesActors.Audit.Journal;

/// <summary>
/// Turns journal rows, in global order, into <see cref="AuditEvent"/>s. Qube events carry no name (only the stream's
/// uuid), so the names are learnt on the way from <c>qube.created</c> (and a later <c>name</c> property change): every
/// event is read even when a filter keeps few of them.
/// </summary>
public sealed class AuditEventBuilder(IReadOnlyDictionary<string, string>? knownNames = null)
{
    // A reader that starts in the middle of the journal is given the names of the streams created before.
    private readonly Dictionary<string, string> _names = knownNames is null ? new(StringComparer.Ordinal) : new(knownNames, StringComparer.Ordinal);

    public AuditEvent Build(long ordering, string persistenceId, long sequenceNr, DomainEvent e)
    {
        switch (e)
        {
            case QubeCreated created:
                _names[persistenceId] = created.Name;
                break;
            case QubePropertySet { Property: "name" } renamed:
                _names[persistenceId] = renamed.Value;
                break;
        }
        string qube;
        ImmutableArray<string> qubes;
        if (e is PolicyDecisionRecorded p)
        {
            qube = p.Source;
            qubes = [.. new[] { p.Source, p.RequestedTarget, p.NormalizedTarget, p.Target }.OfType<string>().Distinct(StringComparer.Ordinal)];
        }
        else if (persistenceId.StartsWith(JournalSettings.QubePersistenceIdPrefix, StringComparison.Ordinal))
        {
            // A stream whose creation is not in the journal (should not happen): show its uuid rather than nothing.
            qube = _names.GetValueOrDefault(persistenceId) ?? persistenceId;
            qubes = [qube];
        }
        else
        {
            qube = "";
            qubes = [];
        }
        return new AuditEvent(ordering, persistenceId, sequenceNr, EventCodec.ManifestOf(e), qube, qubes, [.. EventCodec.TagsOf(e).Where(t => !t.StartsWith(EventCodec.Tags.QubePrefix, StringComparison.Ordinal))], e);
    }
}
