using FsCheck.Xunit;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class DeviceInfoTests
{
    private static readonly DeviceInfo Webcam =
        new(DeviceClass.Usb, new DevicePort("sys-usb", "2-1"), new DeviceId("1234:5678:0123:u0e0100u010100"))
        {
            Vendor = "ACME",
            Product = "Cam 'Pro'",
            Serial = "0123",
            Interfaces = "u0e0100u010100",
        };

    [Fact]
    public void Serialization_lists_identity_then_known_fields_then_interfaces_then_options()
    {
        var text = (Webcam with { Attachment = "work", Options = DeviceOptions.Of(("ident", "2-1")) }).Serialize();
        Assert.Equal(
            "device_id='1234:5678:0123:u0e0100u010100' port_id='2-1' devclass='usb' backend_domain='sys-usb' " +
            @"vendor='ACME' product='Cam \'Pro\'' serial='0123' attachment='work' interfaces='u0e0100u010100' _ident='2-1'",
            text);
    }

    [Fact]
    public void Unset_text_fields_are_left_out_and_read_back_as_unset()
    {
        var bare = new DeviceInfo(DeviceClass.Pci, new DevicePort("dom0", "00_14.0"), new DeviceId("8086:a0ed::p0c0330"));
        var text = bare.Serialize();
        Assert.DoesNotContain("vendor", text);
        var parsed = DeviceInfo.Parse(text);
        Assert.Null(parsed.Vendor);
        Assert.Equal(bare, parsed);
    }

    [Fact]
    public void Value_unknown_reads_as_unset()
    {
        var parsed = DeviceInfo.Parse("port_id='sda' devclass='block' backend_domain='sys-usb' vendor='unknown' name=''");
        Assert.Null(parsed.Vendor);
        Assert.Null(parsed.Name);
        Assert.Equal(new DeviceInfo(DeviceClass.Block, new DevicePort("sys-usb", "sda")) { Vendor = "unknown" }, parsed);
    }

    [Fact]
    public void Missing_device_id_and_interfaces_read_as_upstreams_unknown_values()
    {
        var parsed = DeviceInfo.Parse("port_id='sda' devclass='block' backend_domain='sys-usb'");
        Assert.Equal(DeviceId.Unknown, parsed.DeviceId);
        Assert.Equal("?******", parsed.Interfaces);
    }

    [Fact]
    public void Unrecognised_keys_are_kept_as_options_like_upstreams_extra_data()
    {
        var parsed = DeviceInfo.Parse("port_id='sda' devclass='block' backend_domain='sys-usb' size='1024' _mode='w'");
        Assert.Equal("1024", parsed.Options["size"]);
        Assert.Equal("w", parsed.Options["mode"]);
    }

    [Theory]
    [InlineData("devclass='usb' backend_domain='sys-usb'")]
    [InlineData("port_id='2-1' backend_domain='sys-usb'")]
    [InlineData("port_id='2-1' devclass='usb'")]
    [InlineData("port_id='2-1' devclass='gpu' backend_domain='sys-usb'")]
    [InlineData("port_id='*' devclass='usb' backend_domain='sys-usb'")]
    [InlineData("port_id='2-1' devclass='usb' backend_domain='sys-usb' interfaces='u0e01'")]
    [InlineData("port_id='2-1' devclass='usb' backend_domain='sys-usb' attachment='bad name'")]
    public void Incomplete_or_invalid_device_is_a_protocol_error(string text)
    {
        Assert.Throws<ProtocolError>(() => DeviceInfo.Parse(text));
    }

    [Fact]
    public void Exposed_device_needs_a_concrete_port_and_identity()
    {
        Assert.Throws<ProtocolError>(() => new DeviceInfo(DeviceClass.Usb, new DevicePort("sys-usb", "*")));
        Assert.Throws<ProtocolError>(() => new DeviceInfo(DeviceClass.Usb, new DevicePort("sys-usb", "2-1"), DeviceId.Any));
    }

    [Fact]
    public void Description_prefers_product_then_name_then_serial_and_vendor_then_manufacturer()
    {
        Assert.Equal("USB device: ACME Cam 'Pro'", Webcam.Description);
        var bare = new DeviceInfo(DeviceClass.Block, new DevicePort("sys-usb", "sda"));
        Assert.Equal("BLOCK device: unknown vendor unknown block device", bare.Description);
        Assert.Equal("BLOCK device: Kingston DataTraveler",
            (bare with { Name = "DataTraveler", Manufacturer = "Kingston" }).Description);
    }

    [Fact]
    public void Available_listing_is_sorted_by_port_and_id_one_line_each()
    {
        var second = new DeviceInfo(DeviceClass.Usb, new DevicePort("sys-usb", "1-1"), new DeviceId("aaaa:bbbb::u030101"));
        var listing = DeviceInfo.FormatAvailableListing([Webcam, second]);
        var lines = listing.Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("1-1:aaaa:bbbb::u030101 device_id='aaaa:bbbb::u030101'", lines[0]);
        Assert.StartsWith("2-1:1234:5678:0123:u0e0100u010100 ", lines[1]);
        Assert.Equal("", lines[2]);
    }

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Serialization_round_trips(DeviceInfo device) => DeviceInfo.Parse(device.Serialize()) == device;
}
