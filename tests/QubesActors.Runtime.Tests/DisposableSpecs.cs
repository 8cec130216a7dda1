using System.Collections.Immutable;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>Disposables: creation from a disposable template, destruction when they stop or fail to start (§3.4).</summary>
public sealed class DisposableSpecs : QubesSpec
{
    public DisposableSpecs(ITestOutputHelper output) : base(output)
    {
        Boot();
        CreateLayout();
        CreateApp("dvm", "sys-firewall", ("template_for_dispvms", "True"), ("memory", "800"), ("vcpus", "3"));
        Ok(new AddTag("dvm", "browsing", Dom0));
        Ok(new SetFeature("dvm", "gui-allow-fullscreen", "1", Dom0));
        Ok(new SetFeature("dvm", "preload-dispvm-max", "2", Dom0));
        Ok(new SetFirewall("dvm", "action=accept dsthost=example.com\naction=drop\n", Dom0));
    }

    private string CreateDisposable() => Ok(new CreateDisposable("dvm", Dom0)).Output;

    [Fact]
    public void CreateDisposable_copies_properties_tags_features_and_firewall_and_names_it_dispNNNN()
    {
        var name = CreateDisposable();
        Assert.Matches(@"^disp\d{1,4}$", name);
        var snapshot = Host.Snapshot().State;
        var disp = snapshot.Get(name);
        var dvm = snapshot.Get("dvm");
        Assert.Equal(QubeClass.DispVM, disp.Class);
        Assert.Equal($"disp{disp.DispId}", name);
        Assert.Equal("dvm", disp.Property("template"));
        Assert.Equal("True", disp.Property("auto_cleanup"));
        Assert.Equal("800", disp.Property("memory"));
        Assert.Equal("3", disp.Property("vcpus"));
        Assert.Equal("sys-firewall", disp.Property("netvm"));
        Assert.Null(disp.Property("template_for_dispvms"));
        Assert.Equal(dvm.Label, disp.Label);
        Assert.Contains("browsing", disp.Tags);
        Assert.Contains("created-by-dom0", disp.Tags);
        Assert.Contains("disp-created-by-dom0", disp.Tags);
        Assert.Equal("1", disp.Features["gui-allow-fullscreen"]);
        Assert.False(disp.Features.ContainsKey("preload-dispvm-max"));
        Assert.Equal(dvm.Firewall!.Value, disp.Firewall!.Value);
        Assert.Equal("dvm", snapshot.Effective(disp, "default_dispvm"));
        Assert.Equal(PowerState.Halted, disp.Power);
    }

    [Fact]
    public void CreateDisposable_refuses_a_base_that_is_not_a_disposable_template()
    {
        var error = Refused(new CreateDisposable("work", Dom0));
        Assert.Equal("Refusing to create disposable out of app qube which has template_for_dispvms=False", error.Message);
    }

    [Fact]
    public void A_disposable_is_destroyed_when_it_stops()
    {
        var name = CreateDisposable();
        var events = Subscribe();
        Ok(new StartQube(name, Dom0));
        Assert.Equal("sys-firewall", Backend.NetworkOf(name));
        Ok(new ShutdownQube(name, false, true, Dom0));
        var seen = CollectUntil(events, n => n.Event == "domain-delete" && n.Arguments.Any(a => a.Value == name));
        Assert.Contains(seen, n => n.Event == "domain-pre-delete");
        AwaitAssert(() => Assert.Null(Host.Snapshot().State.Find(name)), T);
        Assert.False(Backend.IsRunning(name));
    }

    [Fact]
    public void A_disposable_is_destroyed_when_it_crashes()
    {
        var name = CreateDisposable();
        Ok(new StartQube(name, Dom0));
        Backend.Crash(name);
        AwaitAssert(() => Assert.Null(Host.Snapshot().State.Find(name)), T, TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, Backend.StartCount(name));
    }

    [Fact]
    public void A_disposable_is_destroyed_when_its_start_fails()
    {
        var name = CreateDisposable();
        Backend.FailNextStart(name, "out of memory");
        var error = Refused(new StartQube(name, Dom0));
        Assert.Equal("Start failed: out of memory", error.Message);
        AwaitAssert(() => Assert.Null(Host.Snapshot().State.Find(name)), T, TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void A_command_that_arrives_while_a_disposable_is_cleaned_up_gets_its_own_answer()
    {
        var name = CreateDisposable();
        Ok(new StartQube(name, Dom0));
        var events = Subscribe();
        Ok(new ShutdownQube(name, false, false, Dom0));
        events.FishForMessage<QubesEventNotice>(n => n.Event == "domain-pre-delete", T);
        // The cleanup is in flight: this creation waits behind it and must be answered with its own output.
        var created = Ok(new CreateQube(QubeClass.AppVM, "later", "blue", "fedora", ImmutableDictionary<string, string>.Empty, Dom0));
        Assert.Equal("later", created.Output);
        var tag = Ok(new AddTag("later", "t1", Dom0));
        Assert.Equal("", tag.Output);
        AwaitAssert(() => Assert.Null(Host.Snapshot().State.Find(name)), T);
        Assert.Contains("t1", Qube("later").Tags);
    }
}
