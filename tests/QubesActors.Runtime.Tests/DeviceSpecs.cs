using System.Collections.Immutable;
using QubesActors.Core.Errors;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>Devices at run time: attach, detach, auto-attach assignments, backends that come and go (§5).</summary>
public sealed class DeviceSpecs : QubesSpec
{
    private const string Mouse = "sys-usb:2-1";
    private static readonly ImmutableSortedDictionary<string, string> NoOptions = ImmutableSortedDictionary<string, string>.Empty;

    public DeviceSpecs(ITestOutputHelper output) : base(output)
    {
        Boot();
        CreateLayout();
        CreateApp("sys-usb", null);
        Ok(new SetProperty("sys-usb", "restart", "temporary", Dom0));
    }

    private void StartBoth()
    {
        Ok(new StartQube("sys-usb", Dom0));
        // The backend's devices are listed once it is up, asynchronously: a required device is there only then.
        AwaitAssert(() => Assert.Contains(Host.Snapshot().AvailableDevices.GetValueOrDefault("sys-usb", []), d => d.Address == Mouse), T);
        Ok(new StartQube("work", Dom0));
    }

    [Fact]
    public void A_device_is_attached_to_and_detached_from_a_running_frontend()
    {
        StartBoth();
        Ok(new AttachDevice("work", "usb", Mouse, NoOptions, Dom0));
        Assert.Contains(Mouse, Backend.AttachedDevicesOf("work"));
        Assert.True(Qube("work").Attachments.ContainsKey("usb:" + Mouse));

        Ok(new DetachDevice("work", "usb", Mouse, Dom0));
        Assert.DoesNotContain(Mouse, Backend.AttachedDevicesOf("work"));
        Assert.Empty(Qube("work").Attachments);
    }

    [Fact]
    public void Attach_is_refused_for_a_halted_frontend_an_unknown_device_and_a_device_already_attached()
    {
        Ok(new StartQube("sys-usb", Dom0));
        AwaitAssert(() => Assert.True(Host.Snapshot().AvailableDevices.ContainsKey("sys-usb")), T);
        AssertError<QubesVMNotRunningError>(Refused(new AttachDevice("work", "usb", Mouse, NoOptions, Dom0)),
            "VM not running, cannot attach device, do you mean `assign`?");
        Assert.IsType<ProtocolError>(Refused(new AttachDevice("work", "usb", "sys-usb:9-9", NoOptions, Dom0)));
        Ok(new StartQube("work", Dom0));
        Ok(new AttachDevice("work", "usb", Mouse, NoOptions, Dom0));
        CreateApp("personal");
        Ok(new StartQube("personal", Dom0));
        Assert.IsType<DeviceAlreadyAttached>(Refused(new AttachDevice("personal", "usb", Mouse, NoOptions, Dom0)));
        Assert.IsType<DeviceNotAssigned>(Refused(new DetachDevice("personal", "usb", Mouse, Dom0)));
    }

    [Fact]
    public void An_auto_attach_assignment_attaches_when_the_frontend_starts()
    {
        Ok(new AssignDevice("work", "usb", Mouse, "auto-attach", NoOptions, Dom0));
        Ok(new StartQube("sys-usb", Dom0));
        Ok(new StartQube("work", Dom0));
        AwaitAssert(() => Assert.Contains(Mouse, Backend.AttachedDevicesOf("work")), T);
    }

    [Fact]
    public void A_device_two_qubes_want_is_attached_to_one_of_them_only()
    {
        Ok(new AssignDevice("work", "usb", Mouse, "auto-attach", NoOptions, Dom0));
        CreateApp("personal", "sys-firewall");
        Ok(new AssignDevice("personal", "usb", Mouse, "auto-attach", NoOptions, Dom0));
        Ok(new StartQube("work", Dom0));
        Ok(new StartQube("personal", Dom0));
        // Both are running when the backend comes up and lists the device: one attach, not two.
        Ok(new StartQube("sys-usb", Dom0));
        AwaitAssert(() => Assert.Single(new[] { "work", "personal" }, q => Qube(q).Attachments.ContainsKey("usb:" + Mouse)), T);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.Single(new[] { "work", "personal" }, q => Backend.AttachedDevicesOf(q).Contains(Mouse));
        var owner = Qube("work").Attachments.ContainsKey("usb:" + Mouse) ? "work" : "personal";
        var other = owner == "work" ? "personal" : "work";
        Assert.IsType<Core.Errors.DeviceAlreadyAttached>(Refused(new AttachDevice(other, "usb", Mouse, NoOptions, Dom0)));
    }

    [Fact]
    public void An_auto_attach_assignment_attaches_at_once_to_a_running_frontend()
    {
        StartBoth();
        Ok(new AssignDevice("work", "usb", Mouse, "auto-attach", NoOptions, Dom0));
        AwaitAssert(() => Assert.Contains(Mouse, Backend.AttachedDevicesOf("work")), T);
    }

    [Fact]
    public void Devices_detach_from_their_frontends_when_the_backend_stops_and_auto_attach_again_when_it_is_back()
    {
        Ok(new AssignDevice("work", "usb", Mouse, "auto-attach", NoOptions, Dom0));
        StartBoth();
        AwaitAssert(() => Assert.Contains(Mouse, Backend.AttachedDevicesOf("work")), T);
        var events = Subscribe();

        Ok(new ShutdownQube("sys-usb", false, true, Dom0));
        CollectUntil(events, n => n.Subject == "work" && n.Event == "device-detach:usb");
        AwaitAssert(() =>
        {
            Assert.DoesNotContain(Mouse, Backend.AttachedDevicesOf("work"));
            Assert.Empty(Qube("work").Attachments);
        }, T);
        Assert.True(Qube("work").Assignments.ContainsKey("usb:" + Mouse));

        Ok(new StartQube("sys-usb", Dom0));
        AwaitAssert(() =>
        {
            Assert.Contains(Mouse, Backend.AttachedDevicesOf("work"));
            Assert.True(Qube("work").Attachments.ContainsKey("usb:" + Mouse));
        }, T);
    }

    [Fact]
    public void An_attach_in_flight_when_the_backend_stops_ends_detached()
    {
        Ok(new AssignDevice("work", "usb", Mouse, "auto-attach", NoOptions, Dom0));
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Backend.DeviceAttachGate = gate;
        StartBoth();
        AwaitAssert(() => Assert.Contains($"attach-device work {Mouse}", Backend.Calls), T);
        var events = Subscribe();

        // The backend stops while the attach is in flight; the attach then succeeds late (it raced the shutdown).
        Ok(new ShutdownQube("sys-usb", false, true, Dom0));
        Backend.DeviceAttachGate = null;
        gate.SetResult();

        // The qube records the attach, then the detach the backend's stop asked for: it does not keep the device.
        CollectUntil(events, n => n.Subject == "work" && n.Event == "device-detach:usb");
        AwaitAssert(() =>
        {
            Assert.Empty(Qube("work").Attachments);
            Assert.DoesNotContain(Mouse, Backend.AttachedDevicesOf("work"));
        }, T);
    }

    [Fact]
    public void A_device_that_vanishes_is_detached_and_comes_back_by_its_assignment()
    {
        var stick = new BackendDevice("block", "sys-usb", "sda", "0951:1666", "USB stick");
        Ok(new AssignDevice("work", "block", stick.Address, "auto-attach", NoOptions, Dom0));
        StartBoth();
        Backend.AddDevice(stick);
        AwaitAssert(() => Assert.Contains(stick.Address, Backend.AttachedDevicesOf("work")), T);
        Backend.RemoveDevice(stick);
        AwaitAssert(() => Assert.DoesNotContain(Qube("work").Attachments, a => a.Value.DeviceClass == "block"), T);
        Backend.AddDevice(stick);
        AwaitAssert(() => Assert.True(Qube("work").Attachments.ContainsKey("block:" + stick.Address)), T);
    }

    [Fact]
    public void A_frontend_that_stops_releases_its_attachments()
    {
        StartBoth();
        Ok(new AttachDevice("work", "usb", Mouse, NoOptions, Dom0));
        Ok(new ShutdownQube("work", false, true, Dom0));
        Assert.Empty(Qube("work").Attachments);
        CreateApp("personal");
        Ok(new StartQube("personal", Dom0));
        Ok(new AttachDevice("personal", "usb", Mouse, NoOptions, Dom0));
        Assert.Contains(Mouse, Backend.AttachedDevicesOf("personal"));
    }

    [Fact]
    public void A_required_device_cannot_be_detached_from_a_running_qube()
    {
        Ok(new AssignDevice("work", "usb", Mouse, "required", NoOptions, Dom0));
        StartBoth();
        AwaitAssert(() => Assert.True(Qube("work").Attachments.ContainsKey("usb:" + Mouse)), T);
        AssertError<QubesVMNotHaltedError>(Refused(new DetachDevice("work", "usb", Mouse, Dom0)),
            "Can not detach a required device from a non halted qube. You need to unassign device first.");
    }

    [Fact]
    public void A_qube_with_a_missing_required_device_refuses_to_start()
    {
        Ok(new AssignDevice("work", "usb", Mouse, "required", NoOptions, Dom0));
        var error = Refused(new StartQube("work", Dom0));
        Assert.Equal("Usb device sys-usb:2-1 not available", error.Message);
    }
}
