using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class DeviceClassTests
{
    [Theory]
    [InlineData("pci", DeviceClass.Pci)]
    [InlineData("usb", DeviceClass.Usb)]
    [InlineData("block", DeviceClass.Block)]
    [InlineData("mic", DeviceClass.Mic)]
    public void Class_names_parse_and_print_in_api_spelling(string name, DeviceClass expected)
    {
        Assert.Equal(expected, DeviceClasses.Parse(name));
        Assert.Equal(name, expected.ApiName());
    }

    [Theory]
    [InlineData("PCI")]
    [InlineData("gpu")]
    [InlineData("")]
    public void Unknown_class_name_is_a_protocol_error(string name)
    {
        Assert.Throws<ProtocolError>(() => DeviceClasses.Parse(name));
        Assert.False(DeviceClasses.TryParse(name, out _));
    }

    [Fact]
    public void Deviceclass_List_reply_has_one_terminated_line_per_class_core_classes_first()
    {
        Assert.Equal("pci\nblock\nusb\nmic\n", DeviceClasses.FormatDeviceClassList());
    }

    [Theory]
    [InlineData(DeviceClass.Pci, "Pci")]
    [InlineData(DeviceClass.Usb, "Usb")]
    [InlineData(DeviceClass.Block, "Block")]
    [InlineData(DeviceClass.Mic, "Mic")]
    public void Capitalized_name_follows_python_capitalize_as_upstream_messages_do(DeviceClass devclass, string expected)
    {
        Assert.Equal(expected, devclass.CapitalizedName());
    }
}
