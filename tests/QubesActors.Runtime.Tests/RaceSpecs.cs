using System.Collections.Immutable;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Backend;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>Requests that overlap: whatever the interleaving, nothing illegal is journaled and nobody waits forever.</summary>
public sealed class RaceSpecs : QubesSpec
{
    public RaceSpecs(ITestOutputHelper output) : base(output)
    {
        Boot(new SimulatedBackend(new SimulatedBackendOptions { StartLatency = TimeSpan.FromMilliseconds(300) }));
        CreateLayout();
        Ok(new SetProperty("work", "netvm", "", Dom0));
    }

    [Fact]
    public void Remove_while_a_start_is_under_way_is_refused_and_the_qube_keeps_running()
    {
        Host.Qubes.Tell(new StartQube("work", Dom0), TestActor);
        var refused = Refused(new RemoveQube("work", Dom0));
        Assert.IsType<QubesVMNotHaltedError>(refused);
        ExpectMsg<Done>(T);

        Assert.Equal(PowerState.Running, Qube("work").Power);
        Assert.Empty(Host.Snapshot().Quarantined);
        var stream = JournalLoader.Load(Settings, fromSnapshots: false).Qubes.Single(s => s.Events[0] is QubeCreated { Name: "work" });
        Assert.DoesNotContain(stream.Events, e => e is QubeRemoved);
        Assert.IsType<QubeStarted>(stream.Events[^1]);
    }

    [Fact]
    public void A_template_change_while_a_start_is_under_way_is_refused()
    {
        Ok(new CreateQube(QubeClass.TemplateVM, "other-tpl", "black", null, ImmutableDictionary<string, string>.Empty, Dom0));
        Host.Qubes.Tell(new StartQube("work", Dom0), TestActor);
        var refused = Refused(new SetProperty("work", "template", "other-tpl", Dom0));
        Assert.IsType<QubesVMNotHaltedError>(refused);
        ExpectMsg<Done>(T);
        Assert.NotEqual("other-tpl", Qube("work").Properties.GetValueOrDefault("template"));
    }

    [Fact]
    public void An_administrators_shutdown_during_the_backoff_cancels_the_pending_restart()
    {
        Ok(new SetProperty("work", "restart", "permanent", Dom0));
        Ok(new StartQube("work", Dom0));
        Backend.Crash("work");
        AwaitAssert(() => Assert.Equal(1, Qube("work").ConsecutiveRestarts), T, TimeSpan.FromMilliseconds(20));
        // The restart is due in about 1 s; the administrator starts it at once and shuts it down.
        Ok(new StartQube("work", Dom0));
        Ok(new ShutdownQube("work", Force: false, Wait: true, Dom0));
        var startsBefore = Backend.StartCount("work");
        ExpectNoMsg(TimeSpan.FromSeconds(2));
        Assert.Equal(startsBefore, Backend.StartCount("work"));
        Assert.Equal(PowerState.Halted, Qube("work").Power);
    }
}
