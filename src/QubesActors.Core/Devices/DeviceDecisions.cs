using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// Device rules of one frontend qube (docs/qubes-semantics.md §5, upstream <c>qubes/devices.py</c>): pure
/// functions from state and inputs to a new state, or a Qubes error. Events are the runtime's business.
/// </summary>
public static class DeviceDecisions
{
    /// <summary>
    /// Attaches the single exposed device <paramref name="request"/> names. Mode <c>manual</c> is a plain attach;
    /// the runtime passes an assignment's mode when it auto-attaches.
    /// </summary>
    /// <param name="available">Devices exposed by all running backends now.</param>
    /// <exception cref="QubesVMNotRunningError">Frontend not running.</exception>
    /// <exception cref="ProtocolError">No device or several devices match.</exception>
    /// <exception cref="DeviceAlreadyAttached">Attached here or to another qube.</exception>
    /// <exception cref="PermissionDenied">
    /// Manual attach with a <c>devices_denied</c> list, of a device with a denied interface or not resolved to one device.
    /// </exception>
    public static AttachResult Attach(DeviceState state, DeviceAssignment request, bool frontendRunning,
        IReadOnlyCollection<DeviceInfo> available)
    {
        CheckFrontend(state, request);
        var cls = request.Class.ApiName();
        var candidates = available.Where(request.Matches).ToList();

        // Upstream vetoes in the admin-permission event, before attach() looks at anything else. The denied list
        // guards a user's manual attach; auto-attachment follows an assignment already made.
        if (request.Mode == AssignmentMode.Manual && !state.DeniedInterfaces.IsEmpty)
        {
            if (candidates.Count != 1)
                throw new PermissionDenied("Could not load interfaces to verify against denied list");
            if (DeviceInterfaces.FirstDenied(state.DeniedInterfaces, candidates[0].Interfaces) is { } denied)
                throw new PermissionDenied($"Device exposes a banned interface: {denied}");
        }

        if (!frontendRunning)
            throw new QubesVMNotRunningError("VM not running, cannot attach device, do you mean `assign`?");

        // Upstream folds both cases into the "ambiguous" text by accident; the two messages are kept apart here.
        var device = candidates.Count switch
        {
            0 => throw new ProtocolError($"Cannot attach unknown {cls} device."),
            1 => candidates[0],
            _ => throw new ProtocolError($"Cannot attach ambiguous {cls} device."),
        };

        if (state.FindAttachment(device.Class, device.Port) is not null)
            throw new DeviceAlreadyAttached($"device {device.Address} of class {cls} already attached to {state.Frontend}");
        if (device.Attachment is not null && device.Attachment != state.Frontend)
            throw new DeviceAlreadyAttached($"Device {device.Address} already attached to {device.Attachment}");

        var attachment = new DeviceAssignment(device.Class, device.Address, state.Frontend, request.Mode, request.Options);
        return new(state with { Attachments = state.Attachments.Add(attachment) }, attachment, device);
    }

    /// <summary>Detaches what is attached at <paramref name="port"/>.</summary>
    /// <exception cref="DeviceNotAssigned">Nothing attached there.</exception>
    /// <exception cref="QubesVMNotHaltedError">A required assignment covers it and the frontend is not halted.</exception>
    public static RemovalResult Detach(DeviceState state, DeviceClass devclass, DevicePort port, bool frontendRunning)
    {
        var attached = state.FindAttachment(devclass, port)
            ?? throw new DeviceNotAssigned($"{devclass.ApiName()} device {port.PortId} not attached to {state.Frontend}");

        if (frontendRunning && state.Assignments.Any(a =>
                a.IsRequired && a.Class == devclass && a.Device.Matches(attached.Device)))
            throw new QubesVMNotHaltedError(
                "Can not detach a required device from a non halted qube. You need to unassign device first.");

        return new(state with { Attachments = state.Attachments.Remove(attached) }, attached);
    }

    /// <summary>Adds a persistent assignment; the frontend may be in any power state.</summary>
    /// <exception cref="DeviceAlreadyAssigned">Same class and address already assigned.</exception>
    /// <exception cref="QubesValueError">Mode <c>manual</c>.</exception>
    public static DeviceState Assign(DeviceState state, DeviceAssignment assignment)
    {
        CheckFrontend(state, assignment);
        if (state.FindAssignment(assignment.Class, assignment.Device) is not null)
            throw new DeviceAlreadyAssigned(
                $"{assignment.Class.ApiName()} device {assignment.Device} already assigned to {state.Frontend}");
        if (!assignment.Mode.IsAssignable())
            throw new QubesValueError("Only auto-attachable devices can be assigned.");

        var stored = new DeviceAssignment(assignment.Class, assignment.Device, state.Frontend, assignment.Mode, assignment.Options);
        return state with { Assignments = state.Assignments.Add(stored) };
    }

    /// <summary>Removes an assignment; what is attached stays attached.</summary>
    /// <exception cref="DeviceNotAssigned">No assignment with that class and address.</exception>
    public static RemovalResult Unassign(DeviceState state, DeviceClass devclass, VirtualDevice device)
    {
        var existing = state.FindAssignment(devclass, device)
            ?? throw new DeviceNotAssigned($"{devclass.ApiName()} device {device} not assigned to {state.Frontend}");
        return new(state with { Assignments = state.Assignments.Remove(existing) }, existing);
    }

    /// <summary>Changes the mode of an existing assignment, keeping its options; same mode is a no-op.</summary>
    /// <exception cref="QubesValueError">Mode <c>manual</c>, or no such assignment (upstream's class here, not DeviceNotAssigned).</exception>
    public static DeviceState SetAssignmentMode(DeviceState state, DeviceClass devclass, VirtualDevice device, AssignmentMode mode)
    {
        if (!mode.IsAssignable())
            throw new QubesValueError("Cannot change assignment mode to 'manual'");
        var existing = state.FindAssignment(devclass, device)
            ?? throw new QubesValueError($"Device {device} not assigned to {state.Frontend}");
        if (existing.Mode == mode)
            return state;
        return state with { Assignments = state.Assignments.Replace(existing, existing with { Mode = mode }) };
    }

    /// <summary>A backend stopped: every attachment from it is gone. Assignments stay.</summary>
    public static ReleaseResult OnBackendStopped(DeviceState state, string backendName)
    {
        var lost = state.Attachments.Where(a => a.Port.Backend == backendName).ToImmutableList();
        return new(state with { Attachments = state.Attachments.RemoveRange(lost) }, lost);
    }

    /// <summary>The frontend stopped: all its attachments are released. Assignments stay.</summary>
    public static ReleaseResult OnFrontendStopped(DeviceState state) =>
        new(state with { Attachments = [] }, state.Attachments);

    /// <summary>
    /// Devices appeared (a backend started or a device was plugged in): which assignments of a running frontend
    /// want them. Per device the most specific matching assignment wins (upstream's order); devices attached
    /// anywhere are skipped. Choosing between several frontends wanting one device is the runtime's job.
    /// </summary>
    public static AutoAttachPlan OnDevicesAppeared(DeviceState state, IReadOnlyCollection<DeviceInfo> appeared, bool frontendRunning)
    {
        if (!frontendRunning)
            return AutoAttachPlan.None;

        var toAttach = ImmutableList.CreateBuilder<DeviceAssignment>();
        var toAsk = ImmutableList.CreateBuilder<DeviceAssignment>();
        foreach (var device in appeared)
        {
            if (device.Attachment is not null || state.FindAttachment(device.Class, device.Port) is not null)
                continue;
            var best = state.Assignments
                .Where(a => a.Mode.IsAssignable() && a.Matches(device))
                .OrderByDescending(a => a.Device.Specificity)
                .FirstOrDefault();
            if (best is null)
                continue;
            var concrete = best with { Device = device.Address };
            (best.Mode == AssignmentMode.AskToAttach ? toAsk : toAttach).Add(concrete);
        }
        return new(toAttach.ToImmutable(), toAsk.ToImmutable());
    }

    /// <summary>Required assignments no available device satisfies; a frontend with any cannot start.</summary>
    public static ImmutableList<DeviceAssignment> MissingRequiredDevices(DeviceState state, IReadOnlyCollection<DeviceInfo> available) =>
        state.Assignments.Where(a => a.IsRequired && !available.Any(a.Matches)).ToImmutableList();

    /// <summary>The start check.</summary>
    /// <exception cref="QubesError">
    /// <c>&lt;Class&gt; device &lt;backend:port:device_id&gt; not available</c> for the first missing one, with
    /// upstream's <c>capitalize()</c> spelling (<c>Pci</c>, <c>Usb</c>, <c>Block</c>, <c>Mic</c>).
    /// </exception>
    public static void CheckRequiredDevices(DeviceState state, IReadOnlyCollection<DeviceInfo> available)
    {
        if (MissingRequiredDevices(state, available).FirstOrDefault() is { } missing)
            throw new QubesError(NotAvailableMessage(missing));
    }

    /// <summary>Human-readable line for a missing required device (same text as the start error).</summary>
    public static string NotAvailableMessage(DeviceAssignment missing) =>
        $"{missing.Class.CapitalizedName()} device {missing.Device} not available";

    private static void CheckFrontend(DeviceState state, DeviceAssignment assignment)
    {
        // A payload naming another frontend is a confused or hostile caller, not something to fix up silently.
        if (assignment.Frontend is not null && assignment.Frontend != state.Frontend)
            throw new ProtocolError($"Assignment is for {assignment.Frontend}, not {state.Frontend}");
    }
}
