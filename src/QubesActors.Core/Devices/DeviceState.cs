using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// The device side of one frontend qube: its persistent assignments (qubes.xml), its current attachments
/// (volatile, concrete addresses) and its <c>devices_denied</c> interface patterns.
/// </summary>
public sealed record DeviceState
{
    public DeviceState(string frontend)
    {
        if (!DevicePort.QubeName().IsMatch(frontend))
            throw new ProtocolError($"Invalid qube name: '{frontend}'");
        Frontend = frontend;
    }

    public string Frontend { get; }
    public ImmutableList<DeviceAssignment> Assignments { get; init; } = [];
    public ImmutableList<DeviceAssignment> Attachments { get; init; } = [];

    /// <summary>Normalized 7-character patterns; prefixes are padded with <c>*</c>.</summary>
    public ImmutableSortedSet<string> DeniedInterfaces
    {
        get;
        init => field = value.Select(DeviceInterfaces.NormalizePattern).ToImmutableSortedSet(StringComparer.Ordinal);
    } = ImmutableSortedSet<string>.Empty;

    public static DeviceState Empty(string frontend) => new(frontend);

    public DeviceAssignment? FindAssignment(DeviceClass devclass, VirtualDevice device) =>
        Assignments.Find(a => a.SameDevice(devclass, device));

    public DeviceAssignment? FindAttachment(DeviceClass devclass, DevicePort port) =>
        Attachments.Find(a => a.Class == devclass && a.Port == port);
}

/// <summary>Result of a successful attach: the new state and the attachment made, for the device-attach event.</summary>
public sealed record AttachResult(DeviceState State, DeviceAssignment Attachment, DeviceInfo Device);

/// <summary>Result of a detach or unassign: the new state and what was removed.</summary>
public sealed record RemovalResult(DeviceState State, DeviceAssignment Removed);

/// <summary>Attachments dropped because a qube stopped, one device-detach event each.</summary>
public sealed record ReleaseResult(DeviceState State, ImmutableList<DeviceAssignment> Released);

/// <summary>
/// What newly appeared devices mean for a running frontend: attach these now (auto-attach and required
/// assignments), ask the user about those (ask-to-attach). Addresses are concrete.
/// </summary>
public sealed record AutoAttachPlan(ImmutableList<DeviceAssignment> ToAttach, ImmutableList<DeviceAssignment> ToAsk)
{
    public static AutoAttachPlan None { get; } = new([], []);
}
