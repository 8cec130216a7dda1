using System.Collections.Immutable;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>The first-start layout goes through the ordinary commands, validated and journaled like an administrator's.</summary>
public sealed class LayoutSpecs : QubesSpec
{
    public LayoutSpecs(ITestOutputHelper output) : base(output) => Boot();

    private static LayoutQube Qube(string name, QubeClass cls, string label, string? template, ImmutableDictionary<string, string> properties,
        ImmutableArray<string> tags = default, ImmutableArray<LayoutDevice> devices = default) =>
        new(name, cls, label, template, properties, ImmutableDictionary<string, string>.Empty.Add("servicevm", name.StartsWith("sys-", StringComparison.Ordinal) ? "1" : ""),
            tags.IsDefault ? [] : tags, devices.IsDefault ? [] : devices);

    private static LayoutSpec Layout => new(
    [
        Qube("fedora", QubeClass.TemplateVM, "black", null, Props()),
        Qube("sys-net", QubeClass.AppVM, "red", "fedora", Props(("provides_network", "True"), ("netvm", ""), ("autostart", "True"))),
        Qube("sys-firewall", QubeClass.AppVM, "green", "fedora", Props(("provides_network", "True"), ("netvm", "sys-net"), ("autostart", "True"))),
        Qube("work", QubeClass.AppVM, "blue", "fedora", Props(), ["office"],
            [new LayoutDevice("usb", "sys-usb:2-1", "auto-attach", ImmutableDictionary<string, string>.Empty)]),
    ], ImmutableDictionary<string, string>.Empty.Add("default_netvm", "sys-firewall").Add("default_template", "fedora"));

    [Fact]
    public void InitializeLayout_creates_the_qubes_their_tags_devices_and_the_globals()
    {
        Ok(new InitializeLayout(Layout));
        var c = Host.Snapshot().State;
        Assert.Equal(["dom0", "fedora", "sys-firewall", "sys-net", "work"], c.Qubes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("sys-firewall", c.Effective(c.Get("work"), "netvm"));
        Assert.Contains("office", c.Get("work").Tags);
        Assert.True(c.Get("work").Assignments.ContainsKey("usb:sys-usb:2-1"));
        Assert.Equal("fedora", c.Globals["default_template"]);
        Assert.Equal("permanent", c.Effective(c.Get("sys-net"), "restart"));
    }

    [Fact]
    public void InitializeLayout_is_refused_on_a_collection_that_is_not_empty()
    {
        Ok(new InitializeLayout(Layout));
        Assert.Equal("The collection is not empty", Refused(new InitializeLayout(Layout)).Message);
    }

    [Fact]
    public void InitializeLayout_stops_at_the_first_refusal_and_reports_it()
    {
        var bad = Layout with { Qubes = Layout.Qubes.Add(Qube("broken", QubeClass.AppVM, "no-such-label", "fedora", Props())) };
        var error = Refused(new InitializeLayout(bad));
        Assert.StartsWith("layout: ", error.Message, StringComparison.Ordinal);
        Assert.NotNull(Host.Snapshot().State.Find("work"));
        Assert.Null(Host.Snapshot().State.Find("broken"));
    }

    [Fact]
    public void Autostart_qubes_come_up_after_a_daemon_restart()
    {
        var backend = NewBackend();
        Ok(new InitializeLayout(Layout));
        Shutdown(Sys, T, verifySystemShutdown: true);
        using var kit = new Akka.TestKit.Xunit2.TestKit(ConfigFor(Settings), "qubes-restarted");
        var host = QubesHost.Start(kit.Sys, backend, Settings);
        kit.AwaitAssert(() =>
        {
            Assert.Equal(PowerState.Running, host.Qube("sys-firewall").Power);
            Assert.Equal(PowerState.Running, host.Qube("sys-net").Power);
        }, T);
        Assert.Equal(PowerState.Halted, host.Qube("work").Power);
        Assert.Equal(1, backend.StartCount("sys-net"));
    }
}
