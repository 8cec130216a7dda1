using QubesActors.Core.Policy;
using Xunit;

namespace QubesActors.Core.Tests.Policy;

public sealed class SystemInfoJsonTests
{
    [Fact]
    public void Reads_every_field_and_defaults()
    {
        var info = SystemInfoJson.Parse("""
            {"domains": {
              "dom0": {"type": "AdminVM", "tags": ["t"], "uuid": "00000000-0000-0000-0000-000000000000", "power_state": "Running", "icon": "x"},
              "work": {"type": "AppVM", "tags": [], "template_for_dispvms": true, "default_dispvm": "dvm", "power_state": "Halted",
                       "uuid": "c9024a97-9b15-46cc-8341-be9e1f8a9f61", "internal": true, "guivm": null},
              "bare": {"type": "AppVM"}
            }}
            """);
        Assert.Equal(3, info.Domains.Count);
        Assert.Equal(Guid.Empty, info.Domains["dom0"].Uuid);
        var work = info.Domains["work"];
        Assert.True(work.TemplateForDispVms);
        Assert.True(work.Internal);
        Assert.Equal("dvm", work.DefaultDispVm);
        var bare = info.Domains["bare"];
        Assert.Empty(bare.Tags);
        Assert.Equal("Halted", bare.PowerState);
        Assert.Null(bare.Uuid);
        Assert.Null(bare.DefaultDispVm);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("""{"domains": []}""")]
    [InlineData("""{"domains": {"a": {}}}""")]
    [InlineData("""{"domains": {"a": {"type": 1}}}""")]
    [InlineData("""{"domains": {"a": {"type": "AppVM", "tags": "x"}}}""")]
    [InlineData("""{"domains": {"a": {"type": "AppVM", "uuid": "nope"}}}""")]
    [InlineData("""{"domains": {"a": {"type": "AppVM", "internal": "yes"}}}""")]
    public void Bad_input_is_a_format_exception(string json) =>
        Assert.Throws<FormatException>(() => SystemInfoJson.Parse(json));
}
