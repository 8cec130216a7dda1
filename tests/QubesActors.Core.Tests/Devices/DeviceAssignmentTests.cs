using FsCheck.Xunit;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class DeviceAssignmentTests
{
    private static readonly VirtualDevice Nic = new("dom0", "00_14.0", "8086:a0ed::p0c0330");

    [Theory]
    [InlineData("manual", AssignmentMode.Manual)]
    [InlineData("ask-to-attach", AssignmentMode.AskToAttach)]
    [InlineData("auto-attach", AssignmentMode.AutoAttach)]
    [InlineData("required", AssignmentMode.Required)]
    public void Modes_parse_and_print_in_upstream_spelling(string name, AssignmentMode mode)
    {
        Assert.Equal(mode, AssignmentModes.Parse(name));
        Assert.Equal(name, mode.ApiName());
    }

    [Theory]
    [InlineData("Required")]
    [InlineData("auto")]
    [InlineData("")]
    public void Unknown_mode_is_an_unrecognized_assignment_mode(string name)
    {
        var error = Assert.Throws<QubesUnrecognizedDeviceAssignmentMode>(() => AssignmentModes.Parse(name));
        Assert.Equal("Invalid assignment mode", error.Message);
        Assert.IsAssignableFrom<ProtocolError>(error);
    }

    [Fact]
    public void Manual_is_not_an_assignable_mode_for_Set_assignment()
    {
        Assert.False(AssignmentMode.Manual.IsAssignable());
        Assert.Throws<QubesUnrecognizedDeviceAssignmentMode>(() => AssignmentModes.ParseForSetAssignment("manual"));
        Assert.Equal(AssignmentMode.Required, AssignmentModes.ParseForSetAssignment("required"));
    }

    [Fact]
    public void Serialization_has_device_then_mode_frontend_and_options()
    {
        var assignment = new DeviceAssignment(DeviceClass.Pci, Nic, "work", AssignmentMode.Required,
            DeviceOptions.Empty.WithFlag("no-strict-reset", true));
        Assert.Equal(
            "device_id='8086:a0ed::p0c0330' port_id='00_14.0' devclass='pci' backend_domain='dom0' " +
            "mode='required' frontend_domain='work' _no-strict-reset='yes'",
            assignment.Serialize());
    }

    [Fact]
    public void Empty_payload_is_a_manual_attachment_of_the_argument_device()
    {
        var parsed = DeviceAssignment.Parse("", DeviceClass.Pci, Nic);
        Assert.Equal(new DeviceAssignment(DeviceClass.Pci, Nic), parsed);
        Assert.Equal(AssignmentMode.Manual, parsed.Mode);
    }

    [Fact]
    public void Payload_of_mode_frontend_and_options_alone_is_read_against_the_argument()
    {
        var parsed = DeviceAssignment.Parse("mode='required' frontend_domain='work' _permissive='yes'", DeviceClass.Pci, Nic);
        Assert.Equal(AssignmentMode.Required, parsed.Mode);
        Assert.Equal("work", parsed.Frontend);
        Assert.True(parsed.Options.Flag("permissive"));
        Assert.Equal(Nic, parsed.Device);
    }

    [Fact]
    public void Payload_device_id_fills_in_a_wildcard_argument()
    {
        var parsed = DeviceAssignment.Parse("device_id='1234:5678::u080650' mode='auto-attach'", DeviceClass.Usb,
            new VirtualDevice("sys-usb", "2-1"));
        Assert.Equal(new VirtualDevice("sys-usb", "2-1", "1234:5678::u080650"), parsed.Device);
    }

    [Theory]
    [InlineData("backend_domain='sys-net'")]
    [InlineData("port_id='00_15.0'")]
    [InlineData("devclass='usb'")]
    [InlineData("device_id='1111:2222::p0c0330'")]
    [InlineData("required='yes'")]
    [InlineData("mode='required")]
    public void Payload_contradicting_the_argument_or_malformed_is_a_protocol_error(string payload)
    {
        Assert.Throws<ProtocolError>(() => DeviceAssignment.Parse(payload, DeviceClass.Pci, Nic));
    }

    [Fact]
    public void Payload_with_unknown_mode_is_an_unrecognized_assignment_mode()
    {
        Assert.Throws<QubesUnrecognizedDeviceAssignmentMode>(() =>
            DeviceAssignment.Parse("mode='always'", DeviceClass.Pci, Nic));
    }

    [Fact]
    public void Listing_lines_start_with_backend_plus_port_and_device_id()
    {
        var assignment = new DeviceAssignment(DeviceClass.Pci, Nic, "sys-net", AssignmentMode.Required);
        Assert.Equal($"dom0+00_14.0:8086:a0ed::p0c0330 {assignment.Serialize()}\n",
            DeviceAssignment.FormatListing([assignment]));
    }

    [Fact]
    public void Options_compare_by_content()
    {
        var a = new DeviceAssignment(DeviceClass.Block, Nic, options: DeviceOptions.Of(("read-only", "yes"), ("x", "1")));
        var b = new DeviceAssignment(DeviceClass.Block, Nic, options: DeviceOptions.Of(("x", "1"), ("read-only", "yes")));
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Serialization_round_trips_against_its_own_address(DeviceAssignment assignment) =>
        DeviceAssignment.Parse(assignment.Serialize(), assignment.Class, assignment.Device) == assignment;

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Serialization_round_trips_against_the_address_without_device_id(DeviceAssignment assignment) =>
        DeviceAssignment.Parse(assignment.Serialize(), assignment.Class, assignment.Device with { DeviceId = DeviceId.Any })
        == assignment;
}
