using System.Collections.Immutable;
using FsCheck.Xunit;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class DeviceDecisionsTests
{
    private static readonly DeviceInfo Stick =
        new(DeviceClass.Usb, new DevicePort("sys-usb", "2-1"), new DeviceId("0951:1666:AA01:u080650"))
        {
            Vendor = "Kingston",
            Interfaces = "u080650",
        };

    private static readonly DeviceInfo Webcam =
        new(DeviceClass.Usb, new DevicePort("sys-usb", "2-2"), new DeviceId("046d:0825:CAFE:u0e0100u010100"))
        {
            Interfaces = "u0e0100u010100",
        };

    private static readonly DeviceInfo StickBlock =
        new(DeviceClass.Block, new DevicePort("sys-usb", "sda"), new DeviceId("0951:1666:AA01:1"));

    private static readonly DeviceInfo Nic =
        new(DeviceClass.Pci, new DevicePort("dom0", "00_14.0"), new DeviceId("8086:a0ed::p0c0330")) { Interfaces = "p0c0330" };

    private static readonly IReadOnlyCollection<DeviceInfo> Available = [Stick, Webcam, StickBlock, Nic];

    private static readonly DeviceState Work = DeviceState.Empty("work");

    private static DeviceAssignment Manual(DeviceInfo device) => new(device.Class, device.Address);

    private static DeviceAssignment Assigned(DeviceInfo device, AssignmentMode mode, VirtualDevice? address = null) =>
        new(device.Class, address ?? device.Address, "work", mode);

    // ---- Attach ----

    [Fact]
    public void Attach_adds_a_manual_attachment_of_the_resolved_device()
    {
        var result = DeviceDecisions.Attach(Work, new DeviceAssignment(DeviceClass.Usb, new VirtualDevice("sys-usb", "2-1")),
            frontendRunning: true, Available);

        Assert.Equal(Stick, result.Device);
        Assert.Equal(new DeviceAssignment(DeviceClass.Usb, Stick.Address, "work"), result.Attachment);
        Assert.Equal([result.Attachment], result.State.Attachments);
        Assert.Empty(result.State.Assignments);
    }

    [Fact]
    public void Attach_must_refuse_a_halted_frontend_and_suggest_assign()
    {
        var error = Assert.Throws<QubesVMNotRunningError>(() =>
            DeviceDecisions.Attach(Work, Manual(Stick), frontendRunning: false, Available));
        Assert.Equal("VM not running, cannot attach device, do you mean `assign`?", error.Message);
    }

    [Fact]
    public void Attach_must_refuse_an_unknown_device_with_a_protocol_error()
    {
        var error = Assert.Throws<ProtocolError>(() => DeviceDecisions.Attach(Work,
            new DeviceAssignment(DeviceClass.Usb, new VirtualDevice("sys-usb", "3-1")), true, Available));
        Assert.Equal("Cannot attach unknown usb device.", error.Message);
    }

    [Fact]
    public void Attach_must_refuse_a_device_whose_identity_differs_at_that_port()
    {
        Assert.Throws<ProtocolError>(() => DeviceDecisions.Attach(Work,
            new DeviceAssignment(DeviceClass.Usb, new VirtualDevice("sys-usb", "2-1", "0951:1666:OTHER:u080650")), true, Available));
    }

    [Fact]
    public void Attach_must_refuse_a_device_of_another_class_at_that_port()
    {
        Assert.Throws<ProtocolError>(() => DeviceDecisions.Attach(Work,
            new DeviceAssignment(DeviceClass.Block, new VirtualDevice("sys-usb", "2-1")), true, Available));
    }

    [Fact]
    public void Attach_must_refuse_an_ambiguous_device_with_a_protocol_error()
    {
        var error = Assert.Throws<ProtocolError>(() => DeviceDecisions.Attach(Work,
            new DeviceAssignment(DeviceClass.Usb, new VirtualDevice("sys-usb", "*")), true, Available));
        Assert.Equal("Cannot attach ambiguous usb device.", error.Message);
    }

    [Fact]
    public void Attach_resolves_a_wildcard_port_by_identity()
    {
        var result = DeviceDecisions.Attach(Work,
            new DeviceAssignment(DeviceClass.Usb, new VirtualDevice("*", "*", Webcam.DeviceId.Value)), true, Available);
        Assert.Equal(Webcam.Address, result.Attachment.Device);
    }

    [Fact]
    public void Attach_must_refuse_a_device_already_attached_to_the_frontend()
    {
        var once = DeviceDecisions.Attach(Work, Manual(Stick), true, Available).State;
        var error = Assert.Throws<DeviceAlreadyAttached>(() => DeviceDecisions.Attach(once, Manual(Stick), true, Available));
        Assert.Equal("device sys-usb:2-1:0951:1666:AA01:u080650 of class usb already attached to work", error.Message);
    }

    [Fact]
    public void Attach_must_refuse_a_device_attached_to_another_qube()
    {
        var elsewhere = Stick with { Attachment = "personal" };
        var error = Assert.Throws<DeviceAlreadyAttached>(() =>
            DeviceDecisions.Attach(Work, Manual(Stick), true, [elsewhere]));
        Assert.Equal("Device sys-usb:2-1:0951:1666:AA01:u080650 already attached to personal", error.Message);
    }

    [Fact]
    public void Attach_must_refuse_manual_attach_of_a_device_with_a_denied_interface()
    {
        var guarded = Work with { DeniedInterfaces = ["u0e"] };
        var error = Assert.Throws<PermissionDenied>(() => DeviceDecisions.Attach(guarded, Manual(Webcam), true, Available));
        Assert.Equal("Device exposes a banned interface: u0e0100", error.Message);
    }

    [Fact]
    public void Attach_checks_denied_interfaces_before_the_power_state_as_upstreams_permission_event_does()
    {
        var guarded = Work with { DeniedInterfaces = ["u0e"] };
        Assert.Throws<PermissionDenied>(() => DeviceDecisions.Attach(guarded, Manual(Webcam), false, Available));
    }

    [Fact]
    public void Attach_with_a_denied_list_must_refuse_a_device_it_cannot_resolve_to_check()
    {
        var guarded = Work with { DeniedInterfaces = ["u0e"] };
        var error = Assert.Throws<PermissionDenied>(() => DeviceDecisions.Attach(guarded,
            new DeviceAssignment(DeviceClass.Usb, new VirtualDevice("sys-usb", "*")), true, Available));
        Assert.Equal("Could not load interfaces to verify against denied list", error.Message);
    }

    [Fact]
    public void Attach_allows_devices_whose_interfaces_are_not_denied()
    {
        var guarded = Work with { DeniedInterfaces = ["u0e"] };
        var result = DeviceDecisions.Attach(guarded, Manual(Stick), true, Available);
        Assert.Single(result.State.Attachments);
    }

    [Fact]
    public void Attach_for_an_assignment_is_not_subject_to_the_denied_list()
    {
        var guarded = Work with { DeniedInterfaces = ["u0e"] };
        var result = DeviceDecisions.Attach(guarded, Assigned(Webcam, AssignmentMode.AutoAttach), true, Available);
        Assert.Equal(AssignmentMode.AutoAttach, result.Attachment.Mode);
    }

    [Fact]
    public void Attach_keeps_the_requested_options()
    {
        var request = Manual(StickBlock) with { Options = DeviceOptions.Of(("read-only", "yes")) };
        var result = DeviceDecisions.Attach(Work, request, true, Available);
        Assert.True(result.Attachment.Options.Flag("read-only"));
    }

    [Fact]
    public void Attach_must_refuse_a_request_for_another_frontend()
    {
        var request = new DeviceAssignment(DeviceClass.Usb, Stick.Address, "personal");
        Assert.Throws<ProtocolError>(() => DeviceDecisions.Attach(Work, request, true, Available));
    }

    // ---- Detach ----

    [Fact]
    public void Detach_removes_the_attachment_at_that_port()
    {
        var attached = DeviceDecisions.Attach(Work, Manual(Stick), true, Available);
        var result = DeviceDecisions.Detach(attached.State, DeviceClass.Usb, Stick.Port, frontendRunning: true);
        Assert.Empty(result.State.Attachments);
        Assert.Equal(attached.Attachment, result.Removed);
    }

    [Fact]
    public void Detach_must_refuse_a_device_that_is_not_attached()
    {
        var error = Assert.Throws<DeviceNotAssigned>(() =>
            DeviceDecisions.Detach(Work, DeviceClass.Usb, Stick.Port, frontendRunning: true));
        Assert.Equal("usb device 2-1 not attached to work", error.Message);
    }

    [Fact]
    public void Detach_must_not_confuse_classes_sharing_a_backend()
    {
        var attached = DeviceDecisions.Attach(Work, Manual(StickBlock), true, Available).State;
        Assert.Throws<DeviceNotAssigned>(() =>
            DeviceDecisions.Detach(attached, DeviceClass.Usb, StickBlock.Port, frontendRunning: true));
    }

    [Fact]
    public void Detach_must_refuse_required_device_of_running_qube()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        state = DeviceDecisions.Attach(state, Assigned(Nic, AssignmentMode.Required), true, Available).State;

        var error = Assert.Throws<QubesVMNotHaltedError>(() =>
            DeviceDecisions.Detach(state, DeviceClass.Pci, Nic.Port, frontendRunning: true));
        Assert.Equal("Can not detach a required device from a non halted qube. You need to unassign device first.", error.Message);
    }

    [Fact]
    public void Detach_of_a_required_device_is_refused_also_through_a_wildcard_assignment()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required, new VirtualDevice("dom0", "00_14.0")));
        state = DeviceDecisions.Attach(state, Manual(Nic), true, Available).State;
        Assert.Throws<QubesVMNotHaltedError>(() => DeviceDecisions.Detach(state, DeviceClass.Pci, Nic.Port, true));
    }

    [Fact]
    public void Detach_of_a_required_device_is_allowed_once_it_is_unassigned()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        state = DeviceDecisions.Attach(state, Assigned(Nic, AssignmentMode.Required), true, Available).State;
        state = DeviceDecisions.Unassign(state, DeviceClass.Pci, Nic.Address).State;

        Assert.Empty(DeviceDecisions.Detach(state, DeviceClass.Pci, Nic.Port, true).State.Attachments);
    }

    [Fact]
    public void Detach_of_an_auto_attached_device_is_allowed_while_running()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        state = DeviceDecisions.Attach(state, Assigned(Stick, AssignmentMode.AutoAttach), true, Available).State;
        var result = DeviceDecisions.Detach(state, DeviceClass.Usb, Stick.Port, true);
        Assert.Empty(result.State.Attachments);
        Assert.Single(result.State.Assignments);
    }

    // ---- Assign / Unassign / SetAssignmentMode ----

    [Theory]
    [InlineData(AssignmentMode.AutoAttach)]
    [InlineData(AssignmentMode.AskToAttach)]
    [InlineData(AssignmentMode.Required)]
    public void Assign_stores_the_assignment_for_this_frontend_whatever_its_power_state(AssignmentMode mode)
    {
        var state = DeviceDecisions.Assign(Work, new DeviceAssignment(DeviceClass.Usb, Stick.Address, null, mode));
        var stored = Assert.Single(state.Assignments);
        Assert.Equal("work", stored.Frontend);
        Assert.Equal(mode, stored.Mode);
        Assert.Empty(state.Attachments);
    }

    [Fact]
    public void Assign_must_refuse_an_existing_assignment()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        var error = Assert.Throws<DeviceAlreadyAssigned>(() =>
            DeviceDecisions.Assign(state, Assigned(Stick, AssignmentMode.Required)));
        Assert.Equal("usb device sys-usb:2-1:0951:1666:AA01:u080650 already assigned to work", error.Message);
    }

    [Fact]
    public void Assign_allows_the_same_port_with_another_identity_or_class()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        state = DeviceDecisions.Assign(state, Assigned(Stick, AssignmentMode.AutoAttach, new VirtualDevice("sys-usb", "2-1")));
        state = DeviceDecisions.Assign(state, new DeviceAssignment(DeviceClass.Block, Stick.Address, "work", AssignmentMode.AutoAttach));
        Assert.Equal(3, state.Assignments.Count);
    }

    [Fact]
    public void Assign_must_refuse_mode_manual()
    {
        var error = Assert.Throws<QubesValueError>(() => DeviceDecisions.Assign(Work, Manual(Stick)));
        Assert.Equal("Only auto-attachable devices can be assigned.", error.Message);
    }

    [Fact]
    public void Assign_must_refuse_an_assignment_for_another_frontend()
    {
        var other = new DeviceAssignment(DeviceClass.Usb, Stick.Address, "personal", AssignmentMode.AutoAttach);
        Assert.Throws<ProtocolError>(() => DeviceDecisions.Assign(Work, other));
    }

    [Fact]
    public void Unassign_removes_the_assignment_and_leaves_attachments()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        state = DeviceDecisions.Attach(state, Manual(Stick), true, Available).State;
        var result = DeviceDecisions.Unassign(state, DeviceClass.Usb, Stick.Address);
        Assert.Empty(result.State.Assignments);
        Assert.Single(result.State.Attachments);
        Assert.Equal(AssignmentMode.AutoAttach, result.Removed.Mode);
    }

    [Fact]
    public void Unassign_must_refuse_an_unknown_assignment()
    {
        var error = Assert.Throws<DeviceNotAssigned>(() => DeviceDecisions.Unassign(Work, DeviceClass.Usb, Stick.Address));
        Assert.Equal("usb device sys-usb:2-1:0951:1666:AA01:u080650 not assigned to work", error.Message);
    }

    [Fact]
    public void Unassign_matches_the_address_exactly_not_by_wildcard()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        Assert.Throws<DeviceNotAssigned>(() => DeviceDecisions.Unassign(state, DeviceClass.Usb, new VirtualDevice("sys-usb", "2-1")));
    }

    [Fact]
    public void SetAssignmentMode_changes_the_mode_and_keeps_the_options()
    {
        var original = Assigned(Nic, AssignmentMode.AutoAttach) with { Options = DeviceOptions.Of(("permissive", "yes")) };
        var state = DeviceDecisions.Assign(Work, original);
        state = DeviceDecisions.SetAssignmentMode(state, DeviceClass.Pci, Nic.Address, AssignmentMode.Required);
        var changed = Assert.Single(state.Assignments);
        Assert.Equal(AssignmentMode.Required, changed.Mode);
        Assert.Equal(original.Options, changed.Options);
    }

    [Fact]
    public void SetAssignmentMode_to_the_same_mode_changes_nothing()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        Assert.Same(state, DeviceDecisions.SetAssignmentMode(state, DeviceClass.Pci, Nic.Address, AssignmentMode.Required));
    }

    [Fact]
    public void SetAssignmentMode_must_refuse_manual()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        var error = Assert.Throws<QubesValueError>(() =>
            DeviceDecisions.SetAssignmentMode(state, DeviceClass.Pci, Nic.Address, AssignmentMode.Manual));
        Assert.Equal("Cannot change assignment mode to 'manual'", error.Message);
    }

    [Fact]
    public void SetAssignmentMode_must_refuse_an_unassigned_device_with_upstreams_value_error()
    {
        var error = Assert.Throws<QubesValueError>(() =>
            DeviceDecisions.SetAssignmentMode(Work, DeviceClass.Pci, Nic.Address, AssignmentMode.Required));
        Assert.Equal("Device dom0:00_14.0:8086:a0ed::p0c0330 not assigned to work", error.Message);
    }

    // ---- Backend and frontend stops ----

    [Fact]
    public void OnBackendStopped_detaches_everything_from_that_backend_and_keeps_assignments()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        state = DeviceDecisions.Attach(state, Manual(Stick), true, Available).State;
        state = DeviceDecisions.Attach(state, Manual(StickBlock), true, Available).State;
        state = DeviceDecisions.Attach(state, Manual(Nic), true, Available).State;

        var result = DeviceDecisions.OnBackendStopped(state, "sys-usb");

        Assert.Equal([Stick.Address, StickBlock.Address], result.Released.Select(a => a.Device));
        Assert.Equal([Nic.Address], result.State.Attachments.Select(a => a.Device));
        Assert.Single(result.State.Assignments);
    }

    [Fact]
    public void OnBackendStopped_of_an_unrelated_backend_changes_nothing()
    {
        var state = DeviceDecisions.Attach(Work, Manual(Stick), true, Available).State;
        var result = DeviceDecisions.OnBackendStopped(state, "sys-net");
        Assert.Empty(result.Released);
        Assert.Equal(state.Attachments, result.State.Attachments);
    }

    [Fact]
    public void OnFrontendStopped_releases_all_attachments_and_keeps_assignments()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        state = DeviceDecisions.Attach(state, Assigned(Nic, AssignmentMode.Required), true, Available).State;
        state = DeviceDecisions.Attach(state, Manual(Stick), true, Available).State;

        var result = DeviceDecisions.OnFrontendStopped(state);

        Assert.Equal(2, result.Released.Count);
        Assert.Empty(result.State.Attachments);
        Assert.Single(result.State.Assignments);
    }

    // ---- Devices appearing ----

    [Fact]
    public void OnDevicesAppeared_attaches_matching_auto_attach_and_required_assignments()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach, new VirtualDevice("sys-usb", "2-1")));
        state = DeviceDecisions.Assign(state, Assigned(Nic, AssignmentMode.Required));

        var plan = DeviceDecisions.OnDevicesAppeared(state, [Stick, Nic, Webcam], frontendRunning: true);

        Assert.Equal([Stick.Address, Nic.Address], plan.ToAttach.Select(a => a.Device));
        Assert.All(plan.ToAttach, a => Assert.True(a.Device.IsConcrete));
        Assert.Empty(plan.ToAsk);
    }

    [Fact]
    public void OnDevicesAppeared_returns_ask_to_attach_assignments_separately()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Webcam, AssignmentMode.AskToAttach));
        var plan = DeviceDecisions.OnDevicesAppeared(state, [Webcam], true);
        Assert.Empty(plan.ToAttach);
        var ask = Assert.Single(plan.ToAsk);
        Assert.Equal(AssignmentMode.AskToAttach, ask.Mode);
    }

    [Fact]
    public void OnDevicesAppeared_does_nothing_for_a_halted_frontend()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        Assert.Equal(AutoAttachPlan.None, DeviceDecisions.OnDevicesAppeared(state, [Stick], frontendRunning: false));
    }

    [Fact]
    public void OnDevicesAppeared_skips_devices_attached_anywhere()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        var plan = DeviceDecisions.OnDevicesAppeared(state, [Stick with { Attachment = "personal" }], true);
        Assert.Empty(plan.ToAttach);

        var attached = DeviceDecisions.Attach(state, Manual(Stick), true, Available).State;
        Assert.Empty(DeviceDecisions.OnDevicesAppeared(attached, [Stick], true).ToAttach);
    }

    [Fact]
    public void OnDevicesAppeared_lets_the_most_specific_assignment_decide()
    {
        // A broad ask-to-attach for the port, a specific auto-attach for this very stick: the stick auto-attaches.
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AskToAttach, new VirtualDevice("sys-usb", "2-1")));
        state = DeviceDecisions.Assign(state, Assigned(Stick, AssignmentMode.AutoAttach));
        state = DeviceDecisions.Assign(state, Assigned(Stick, AssignmentMode.AskToAttach, new VirtualDevice("*", "*", Stick.DeviceId.Value)));

        var plan = DeviceDecisions.OnDevicesAppeared(state, [Stick], true);

        var attach = Assert.Single(plan.ToAttach);
        Assert.Equal(AssignmentMode.AutoAttach, attach.Mode);
        Assert.Empty(plan.ToAsk);
    }

    [Fact]
    public void OnDevicesAppeared_ignores_a_different_device_on_an_assigned_port_when_the_identity_is_pinned()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Stick, AssignmentMode.AutoAttach));
        var impostor = new DeviceInfo(DeviceClass.Usb, Stick.Port, new DeviceId("0951:1666:EVIL:u030101"));
        Assert.Equal(AutoAttachPlan.None.ToAttach, DeviceDecisions.OnDevicesAppeared(state, [impostor], true).ToAttach);
    }

    // ---- Start check ----

    [Fact]
    public void MissingRequiredDevices_lists_required_assignments_without_a_device()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        state = DeviceDecisions.Assign(state, Assigned(Stick, AssignmentMode.AutoAttach));

        Assert.Empty(DeviceDecisions.MissingRequiredDevices(state, Available));
        var missing = Assert.Single(DeviceDecisions.MissingRequiredDevices(state, [Stick]));
        Assert.Equal(Nic.Address, missing.Device);
    }

    [Fact]
    public void Start_check_names_the_missing_device_with_upstreams_capitalised_class()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required, new VirtualDevice("dom0", "00_14.0")));
        var error = Assert.Throws<QubesError>(() => DeviceDecisions.CheckRequiredDevices(state, [Stick]));
        Assert.Equal("Pci device dom0:00_14.0:* not available", error.Message);
        Assert.Equal("QubesException", error.QubesClassName);
    }

    [Fact]
    public void Start_check_passes_when_required_devices_are_present()
    {
        var state = DeviceDecisions.Assign(Work, Assigned(Nic, AssignmentMode.Required));
        DeviceDecisions.CheckRequiredDevices(state, Available);
    }

    // ---- State ----

    [Fact]
    public void Denied_interfaces_are_kept_as_full_patterns()
    {
        var state = Work with { DeniedInterfaces = ["u0e", "p02****"] };
        Assert.Equal(["p02****", "u0e****"], state.DeniedInterfaces);
    }

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Attach_then_detach_restores_the_attachments(DeviceInfo device)
    {
        var free = device with { Attachment = null };
        var attached = DeviceDecisions.Attach(Work, Manual(free), true, [free]).State;
        var detached = DeviceDecisions.Detach(attached, free.Class, free.Port, true).State;
        return attached.Attachments.Count == 1 && detached.Attachments.IsEmpty;
    }

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Assign_then_unassign_restores_the_assignments(DeviceAssignment assignment)
    {
        if (!assignment.Mode.IsAssignable())
            return true;
        var mine = new DeviceAssignment(assignment.Class, assignment.Device, "work", assignment.Mode, assignment.Options);
        var assigned = DeviceDecisions.Assign(Work, mine);
        var removed = DeviceDecisions.Unassign(assigned, mine.Class, mine.Device);
        return removed.Removed == mine && removed.State.Assignments.IsEmpty;
    }
}
