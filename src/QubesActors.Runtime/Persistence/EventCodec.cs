using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using QubesActors.Core.Events;

namespace QubesActors.Runtime.Persistence;

/// <summary>
/// Stable manifests and System.Text.Json payloads for every persisted event. Manifests are never reused or
/// renamed; a changed shape gets a new <c>.vN</c> (DESIGN.md, conventions).
/// </summary>
public static class EventCodec
{
    private static readonly (string Manifest, Type Type)[] Table =
    [
        ("qube.created.v1", typeof(QubeCreated)),
        ("qube.property-set.v1", typeof(QubePropertySet)),
        ("qube.property-reset.v1", typeof(QubePropertyReset)),
        ("qube.feature-set.v1", typeof(QubeFeatureSet)),
        ("qube.feature-removed.v1", typeof(QubeFeatureRemoved)),
        ("qube.tag-added.v1", typeof(QubeTagAdded)),
        ("qube.tag-removed.v1", typeof(QubeTagRemoved)),
        ("qube.notes-set.v1", typeof(QubeNotesSet)),
        ("qube.firewall-set.v1", typeof(QubeFirewallSet)),
        ("qube.starting.v1", typeof(QubeStarting)),
        ("qube.started.v1", typeof(QubeStarted)),
        ("qube.start-failed.v1", typeof(QubeStartFailed)),
        ("qube.shutting-down.v1", typeof(QubeShuttingDown)),
        ("qube.stopped.v1", typeof(QubeStopped)),
        ("qube.paused.v1", typeof(QubePaused)),
        ("qube.unpaused.v1", typeof(QubeUnpaused)),
        ("qube.suspended.v1", typeof(QubeSuspended)),
        ("qube.resumed.v1", typeof(QubeResumed)),
        ("qube.adopted.v1", typeof(QubeAdopted)),
        ("qube.restart-scheduled.v1", typeof(QubeRestartScheduled)),
        ("qube.failed.v1", typeof(QubeFailed)),
        ("qube.failed-reset.v1", typeof(QubeFailedReset)),
        ("qube.network-detached.v1", typeof(QubeNetworkDetached)),
        ("qube.network-attached.v1", typeof(QubeNetworkAttached)),
        ("qube.device-assigned.v1", typeof(QubeDeviceAssigned)),
        ("qube.device-unassigned.v1", typeof(QubeDeviceUnassigned)),
        ("qube.device-assignment-changed.v1", typeof(QubeDeviceAssignmentChanged)),
        ("qube.device-attached.v1", typeof(QubeDeviceAttached)),
        ("qube.device-detached.v1", typeof(QubeDeviceDetached)),
        ("qube.removed.v1", typeof(QubeRemoved)),
        ("collection.global-property-set.v1", typeof(GlobalPropertySet)),
        ("collection.global-property-reset.v1", typeof(GlobalPropertyReset)),
        ("collection.label-created.v1", typeof(LabelCreated)),
        ("collection.label-removed.v1", typeof(LabelRemoved)),
        (QubesActors.Runtime.Policy.PolicyDecisionRecorded.Manifest, typeof(QubesActors.Runtime.Policy.PolicyDecisionRecorded)),
        (JournalSealed.Manifest, typeof(JournalSealed)),
    ];

    private static readonly FrozenDictionary<string, Type> ByManifest = Table.ToFrozenDictionary(t => t.Manifest, t => t.Type);
    private static readonly FrozenDictionary<Type, string> ByType = Table.ToFrozenDictionary(t => t.Type, t => t.Manifest);

    public static IReadOnlyCollection<Type> EventTypes => ByType.Keys;

    /// <summary>Source-generated metadata: no reflection warm-up when a daemon decodes its whole journal at start.</summary>
    public static JsonSerializerOptions Options => EventJsonContext.Default.Options;

    public static string ManifestOf(DomainEvent e) =>
        ByType.TryGetValue(e.GetType(), out var m) ? m : throw new ArgumentException($"no manifest for {e.GetType().Name}");

    public static byte[] Encode(DomainEvent e) => JsonSerializer.SerializeToUtf8Bytes(e, e.GetType(), Options);

    public static DomainEvent Decode(ReadOnlySpan<byte> bytes, string manifest) =>
        ByManifest.TryGetValue(manifest, out var type)
            ? (DomainEvent)(JsonSerializer.Deserialize(bytes, type, Options) ?? throw new JsonException("null event"))
            : throw new JsonException($"unknown event manifest '{manifest}'");

    public static byte[] EncodeSnapshot(QubeSnapshot snapshot) => JsonSerializer.SerializeToUtf8Bytes(snapshot, EventJsonContext.Default.QubeSnapshot);

    public static QubeSnapshot DecodeSnapshot(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, EventJsonContext.Default.QubeSnapshot) ?? throw new JsonException("null snapshot");

    /// <summary>
    /// Link of the tamper-evident chain: SHA-256 over the stream id, sequence number, manifest and the stored bytes
    /// (which include the previous link), so editing, deleting or reordering rows breaks the chain.
    /// </summary>
    public static string Hash(string persistenceId, long sequenceNr, string manifest, ReadOnlySpan<byte> payload)
    {
        // One contiguous buffer and one-shot hashing: recovery hashes every stored event.
        var header = Encoding.UTF8.GetByteCount(persistenceId) + Encoding.UTF8.GetByteCount(manifest) + 23;
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(header + payload.Length);
        try
        {
            var span = rented.AsSpan();
            var n = Encoding.UTF8.GetBytes(persistenceId, span);
            span[n++] = (byte)'\n';
            sequenceNr.TryFormat(span[n..], out var digits, provider: System.Globalization.CultureInfo.InvariantCulture);
            n += digits;
            span[n++] = (byte)'\n';
            n += Encoding.UTF8.GetBytes(manifest, span[n..]);
            span[n++] = (byte)'\n';
            payload.CopyTo(span[n..]);
            n += payload.Length;
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(span[..n], digest);
            return Convert.ToHexStringLower(digest);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Journal tags by kind, for the audit viewer's queries.</summary>
    public static string[] TagsOf(DomainEvent e) => e switch
    {
        QubeStarting or QubeStarted or QubeStartFailed or QubeShuttingDown or QubeStopped or QubePaused or QubeUnpaused
            or QubeSuspended or QubeResumed or QubeAdopted or QubeRestartScheduled or QubeFailed or QubeFailedReset
            or QubeCreated or QubeRemoved or QubeNetworkAttached or QubeNetworkDetached => [Tags.Lifecycle, Tags.ForCause(e)],
        QubeFirewallSet => [Tags.Firewall, Tags.ForCause(e)],
        QubesActors.Runtime.Policy.PolicyDecisionRecorded p => PolicyTags(p),
        JournalSealed => [Tags.Seal],
        QubeDeviceAssigned or QubeDeviceUnassigned or QubeDeviceAssignmentChanged or QubeDeviceAttached or QubeDeviceDetached => [Tags.Device, Tags.ForCause(e)],
        _ => [Tags.Property, Tags.ForCause(e)],
    };

    /// <summary>
    /// <c>policy</c>, plus <c>qube:NAME</c> for the source and the target (where an allowed call went; the one asked
    /// for when denied), so the audit viewer finds a qube's
    /// decisions without reading the whole decision log. Only names that are qube names are tagged: a tag cannot hold
    /// the CSV separator, and <c>@dispvm</c>-style tokens are not qubes.
    /// </summary>
    private static string[] PolicyTags(QubesActors.Runtime.Policy.PolicyDecisionRecorded p)
    {
        var tags = new List<string>(3) { Tags.Policy };
        // Two names at most: the tags column holds 100 characters (PostgreSQL enforces it), a name up to 31.
        foreach (var name in new[] { p.Source, p.Target ?? (p.NormalizedTarget.Length > 0 ? p.NormalizedTarget : p.RequestedTarget) })
            if (name is not null && QubesActors.Core.Model.QubeName.IsValid(name) && !tags.Contains(Tags.QubePrefix + name))
                tags.Add(Tags.QubePrefix + name);
        return [.. tags];
    }

    public static class Tags
    {
        public const string Lifecycle = "lifecycle";
        public const string Property = "property";
        public const string Firewall = "firewall";
        public const string Device = "device";
        public const string Policy = "policy";
        public const string Admin = "admin";
        public const string Seal = "seal";
        /// <summary>Prefix of the tags naming the qubes of a policy decision (source, target): <c>qube:work</c>.</summary>
        public const string QubePrefix = "qube:";

        /// <summary>Changes an admin call caused also carry <c>admin</c>; others their cause kind.</summary>
        public static string ForCause(DomainEvent e) => e.Cause.Kind == EventCause.AdminKind ? Admin : $"cause-{e.Cause.Kind}";
    }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(QubeCreated))]
[JsonSerializable(typeof(QubePropertySet))]
[JsonSerializable(typeof(QubePropertyReset))]
[JsonSerializable(typeof(QubeFeatureSet))]
[JsonSerializable(typeof(QubeFeatureRemoved))]
[JsonSerializable(typeof(QubeTagAdded))]
[JsonSerializable(typeof(QubeTagRemoved))]
[JsonSerializable(typeof(QubeNotesSet))]
[JsonSerializable(typeof(QubeFirewallSet))]
[JsonSerializable(typeof(QubeStarting))]
[JsonSerializable(typeof(QubeStarted))]
[JsonSerializable(typeof(QubeStartFailed))]
[JsonSerializable(typeof(QubeShuttingDown))]
[JsonSerializable(typeof(QubeStopped))]
[JsonSerializable(typeof(QubePaused))]
[JsonSerializable(typeof(QubeUnpaused))]
[JsonSerializable(typeof(QubeSuspended))]
[JsonSerializable(typeof(QubeResumed))]
[JsonSerializable(typeof(QubeAdopted))]
[JsonSerializable(typeof(QubeRestartScheduled))]
[JsonSerializable(typeof(QubeFailed))]
[JsonSerializable(typeof(QubeFailedReset))]
[JsonSerializable(typeof(QubeNetworkDetached))]
[JsonSerializable(typeof(QubeNetworkAttached))]
[JsonSerializable(typeof(QubeDeviceAssigned))]
[JsonSerializable(typeof(QubeDeviceUnassigned))]
[JsonSerializable(typeof(QubeDeviceAssignmentChanged))]
[JsonSerializable(typeof(QubeDeviceAttached))]
[JsonSerializable(typeof(QubeDeviceDetached))]
[JsonSerializable(typeof(QubeRemoved))]
[JsonSerializable(typeof(GlobalPropertySet))]
[JsonSerializable(typeof(GlobalPropertyReset))]
[JsonSerializable(typeof(LabelCreated))]
[JsonSerializable(typeof(LabelRemoved))]
[JsonSerializable(typeof(QubeSnapshot))]
[JsonSerializable(typeof(QubesActors.Runtime.Policy.PolicyDecisionRecorded))]
[JsonSerializable(typeof(JournalSealed))]
internal sealed partial class EventJsonContext : JsonSerializerContext;

/// <summary>
/// A qube's state at <see cref="SequenceNr"/>, with the chain link of that event, so recovery can start there and
/// still check that the events after it continue the same chain.
/// </summary>
public sealed record QubeSnapshot(QubesActors.Core.Model.QubeState State, long SequenceNr, string HeadHash)
{
    public const string Manifest = "qube.snapshot.v1";
}

/// <summary>The Akka serializer bound to <see cref="DomainEvent"/>: string manifests, no CLR type names stored.</summary>
public sealed class QubesEventSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 4_242_001;

    public override int Identifier => Id;

    public override byte[] ToBinary(object obj) => obj switch
    {
        DomainEvent e => EventCodec.Encode(e),
        QubeSnapshot s => EventCodec.EncodeSnapshot(s),
        _ => throw new ArgumentException($"cannot serialize {obj.GetType()}"),
    };

    public override object FromBinary(byte[] bytes, string manifest) =>
        manifest == QubeSnapshot.Manifest ? EventCodec.DecodeSnapshot(bytes) : EventCodec.Decode(bytes, manifest);

    public override string Manifest(object o) => o switch
    {
        DomainEvent e => EventCodec.ManifestOf(e),
        QubeSnapshot => QubeSnapshot.Manifest,
        _ => throw new ArgumentException($"cannot serialize {o.GetType()}"),
    };
}
