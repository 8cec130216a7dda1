using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class DeviceInterfacesTests
{
    [Fact]
    public void Interfaces_split_into_seven_character_codes()
    {
        Assert.Equal(["u030101", "u030102"], DeviceInterfaces.Split("u030101u030102").ToArray());
        Assert.Empty(DeviceInterfaces.Split(""));
    }

    [Fact]
    public void Interfaces_of_wrong_length_are_a_value_error_with_upstreams_text()
    {
        var error = Assert.Throws<QubesValueError>(() => DeviceInterfaces.Split("u0301"));
        Assert.Equal("Invalid length of interfaces='u0301' (is 5, expected multiple of 7)", error.Message);
    }

    [Fact]
    public void Interface_code_with_non_hex_digits_is_a_protocol_error()
    {
        Assert.Throws<ProtocolError>(() => DeviceInterfaces.Split("u03zz01"));
    }

    [Theory]
    [InlineData("u0e", "u0e0100", true)]
    [InlineData("u0e****", "u0e0100", true)]
    [InlineData("u0e", "u080650", false)]
    [InlineData("u**01**", "u030102", true)]
    [InlineData("u**02**", "u030102", false)]
    [InlineData("u***1**", "u030101", true)]
    [InlineData("u", "p0c0330", false)]
    [InlineData("*", "p0c0330", true)]
    public void Denied_patterns_are_prefixes_with_star_wildcards(string pattern, string code, bool matches)
    {
        Assert.Equal(matches, DeviceInterfaces.Matches(pattern, code));
    }

    [Fact]
    public void First_denied_reports_the_offending_code()
    {
        Assert.Equal("u0e0100", DeviceInterfaces.FirstDenied(["u0e", "p02"], "u030101u0e0100"));
        Assert.Null(DeviceInterfaces.FirstDenied(["u0e"], "u030101"));
    }

    [Fact]
    public void Pattern_longer_than_a_code_is_a_value_error()
    {
        Assert.Throws<QubesValueError>(() => DeviceInterfaces.NormalizePattern("u0e01000"));
    }
}
