using FsCheck.Xunit;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class VirtualDeviceTests
{
    [Fact]
    public void Cli_form_without_device_id_means_any_device()
    {
        var device = VirtualDevice.ParseCli("sys-usb:2-1");
        Assert.Equal("sys-usb", device.Backend);
        Assert.Equal("2-1", device.PortId);
        Assert.True(device.DeviceId.IsAny);
    }

    [Fact]
    public void Cli_form_keeps_the_colons_of_the_device_id()
    {
        var device = VirtualDevice.ParseCli("sys-usb:2-1:1234:5678:serial:u012345");
        Assert.Equal(new DevicePort("sys-usb", "2-1"), device.Port);
        Assert.Equal("1234:5678:serial:u012345", device.DeviceId.Value);
    }

    [Fact]
    public void Pci_ports_use_underscores_not_colons()
    {
        var device = VirtualDevice.ParseCli("dom0:00_14.0");
        Assert.Equal("dom0", device.Backend);
        Assert.Equal("00_14.0", device.PortId);
    }

    [Fact]
    public void Printing_always_includes_the_device_id()
    {
        Assert.Equal("dom0:00_14.0:*", VirtualDevice.ParseCli("dom0:00_14.0").ToString());
        Assert.Equal("sys-usb:2-1", new DevicePort("sys-usb", "2-1").ToString());
    }

    [Fact]
    public void Api_argument_form_uses_plus_separators_and_underscore_wildcards()
    {
        var device = VirtualDevice.ParseApiArgument("sys-usb+2-1+1234+5678+serial+u012345");
        Assert.Equal(new VirtualDevice("sys-usb", "2-1", "1234:5678:serial:u012345"), device);
        Assert.Equal("sys-usb+2-1+1234+5678+serial+u012345", device.ToApiArgument());

        var any = VirtualDevice.ParseApiArgument("_+_+1234+5678+serial+u012345");
        Assert.True(any.Port.IsAnyBackend);
        Assert.True(any.Port.IsAnyPort);
        Assert.Equal("_+_+1234+5678+serial+u012345", any.ToApiArgument());
    }

    [Fact]
    public void Api_argument_without_device_id_means_any_device()
    {
        Assert.Equal(new VirtualDevice("dom0", "00_14.0"), VirtualDevice.ParseApiArgument("dom0+00_14.0"));
        Assert.Equal("dom0+00_14.0+_", new VirtualDevice("dom0", "00_14.0").ToApiArgument());
    }

    [Fact]
    public void Unknown_interface_is_spelled_with_seven_underscores_in_api_arguments()
    {
        var device = new VirtualDevice("sys-usb", "2-1", DeviceId.UnknownValue);
        Assert.Equal("sys-usb+2-1+0000+0000++_______", device.ToApiArgument());
        Assert.Equal(device, VirtualDevice.ParseApiArgument(device.ToApiArgument()));
    }

    [Theory]
    [InlineData("sys-usb")]
    [InlineData("")]
    [InlineData("sys usb:2-1")]
    [InlineData("1abc:2-1")]
    [InlineData("sys-usb:")]
    [InlineData("sys-usb:2/1")]
    public void Malformed_cli_address_is_a_protocol_error(string text)
    {
        Assert.Throws<ProtocolError>(() => VirtualDevice.ParseCli(text));
        Assert.False(VirtualDevice.TryParseCli(text, out _));
    }

    [Theory]
    [InlineData("sys-usb")]
    [InlineData("sys-usb:2-1")]
    [InlineData("sys-usb+2-1+ab'c")]
    public void Malformed_api_argument_is_a_protocol_error(string text)
    {
        Assert.Throws<ProtocolError>(() => VirtualDevice.ParseApiArgument(text));
        Assert.False(VirtualDevice.TryParseApiArgument(text, out _));
    }

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Cli_form_round_trips(VirtualDevice device) => VirtualDevice.ParseCli(device.ToString()) == device;

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Api_argument_form_round_trips(VirtualDevice device) =>
        VirtualDevice.ParseApiArgument(device.ToApiArgument()) == device;

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Api_argument_form_has_no_wildcard_star(VirtualDevice device) => !device.ToApiArgument().Contains('*');

    private static readonly VirtualDevice Stick = new("sys-usb", "2-1", "1234:5678:serial:u080650");

    [Theory]
    [InlineData("sys-usb:2-1:1234:5678:serial:u080650", true)]
    [InlineData("sys-usb:2-1", true)]
    [InlineData("sys-usb:*:1234:5678:serial:u080650", true)]
    [InlineData("*:*:1234:5678:serial:u080650", true)]
    [InlineData("*:*", true)]
    [InlineData("sys-usb:2-2", false)]
    [InlineData("sys-net:2-1", false)]
    [InlineData("sys-usb:*:1234:5678:other:u080650", false)]
    [InlineData("*:2-1:1111:5678:serial:u080650", false)]
    public void Wildcards_match_any_backend_port_or_identity(string pattern, bool matches)
    {
        Assert.Equal(matches, VirtualDevice.ParseCli(pattern).Matches(Stick));
    }

    [Fact]
    public void Concrete_address_matches_only_itself()
    {
        Assert.True(Stick.IsConcrete);
        Assert.True(Stick.Matches(Stick));
        Assert.False(Stick.Matches(Stick with { DeviceId = new DeviceId("1234:5678:serial:u080651") }));
    }

    [Fact]
    public void Specificity_orders_port_and_id_over_port_over_id_over_nothing()
    {
        var full = Stick.Specificity;
        var portOnly = VirtualDevice.ParseCli("sys-usb:2-1").Specificity;
        var idOnly = VirtualDevice.ParseCli("sys-usb:*:1234:5678:serial:u080650").Specificity;
        var none = VirtualDevice.ParseCli("sys-usb:*").Specificity;
        Assert.True(full > portOnly && portOnly > idOnly && idOnly > none);
    }

    [Property(Arbitrary = [typeof(DeviceGenerators)])]
    public bool Any_address_matches_every_concrete_device(VirtualDevice device) =>
        !device.IsConcrete || VirtualDevice.Any.Matches(device);
}
