using System.Collections.Immutable;
using Akka.Configuration;
using Akka.Persistence.TestKit;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Actors.QubesProtocol;

namespace QubesActors.Runtime.Tests;

/// <summary>
/// Journal writes that fail (outcome unknown) or are rejected (nothing stored), injected with Akka.Persistence.TestKit:
/// the caller gets a Refused and nothing is half-applied, neither in the view nor in the backend.
/// </summary>
public sealed class JournalFailureSpecs : QubesSpec
{
    private static readonly Config TestJournalConfig = ConfigurationFactory
        .ParseString("""akka.persistence.journal.plugin = "akka.persistence.journal.test" """)
        .WithFallback(ConfigurationFactory.FromResource<TestJournal>("Akka.Persistence.TestKit.config.conf"));

    private readonly ITestJournal _journal;

    public JournalFailureSpecs(ITestOutputHelper output) : base(output, NewSqlite(), TestJournalConfig)
    {
        Boot(load: () => LoadedJournal.Empty);
        CreateLayout();
        _journal = TestJournal.FromRef(Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null));
    }

    private void FailWrites() => _journal.OnWrite.Fail().GetAwaiter().GetResult();
    private void RejectWrites() => _journal.OnWrite.Reject().GetAwaiter().GetResult();
    private void PassWrites() => _journal.OnWrite.Pass().GetAwaiter().GetResult();

    [Fact]
    public void A_rejected_write_refuses_the_command_and_changes_nothing()
    {
        RejectWrites();
        var error = Refused(new SetFeature("work", "service.cups", "1", Dom0));
        Assert.StartsWith("Failed to record the change", error.Message, StringComparison.Ordinal);
        Assert.False(Qube("work").Features.ContainsKey("service.cups"));
        PassWrites();
        Ok(new SetFeature("work", "service.cups", "1", Dom0));
        Assert.Equal("1", Qube("work").Features["service.cups"]);
    }

    [Fact]
    public void A_failed_write_refuses_the_command_and_the_restarted_actor_goes_on_from_the_journal()
    {
        Ok(new SetFeature("work", "kept", "1", Dom0));
        FailWrites();
        var error = Refused(new SetFeature("work", "lost", "1", Dom0));
        Assert.StartsWith("Failed to record the change", error.Message, StringComparison.Ordinal);
        Assert.False(Qube("work").Features.ContainsKey("lost"));
        PassWrites();
        Assert.Equal("Halted", Ok(new PingQube("work", Dom0)).Output);
        Ok(new SetFeature("work", "after", "1", Dom0));
        var work = Qube("work");
        Assert.Equal(["after", "kept"], work.Features.Keys);
    }

    [Fact]
    public void A_start_whose_write_fails_is_refused_and_the_running_domain_is_adopted_not_started_twice()
    {
        // The outcome of a failed write is unknown: the actor answers the error, restarts, re-reads its stream and
        // takes the domain as the backend reports it, instead of starting (or killing) it again.
        Ok(new SetProperty("work", "netvm", "", Dom0));
        FailWrites();
        var refused = Refused(new StartQube("work", Dom0));
        Assert.StartsWith("Start failed", refused.Message, StringComparison.Ordinal);
        PassWrites();
        AwaitAssert(() => Assert.Equal("Running", Ok(new PingQube("work", Dom0)).Output), T);
        AwaitAssert(() => Assert.Equal(PowerState.Running, Qube("work").Power), T);
        Ok(new StartQube("work", Dom0));
        Assert.Equal(1, Backend.StartCount("work"));
    }

    [Fact]
    public void A_creation_whose_write_fails_leaves_no_qube_behind()
    {
        FailWrites();
        Refused(new CreateQube(QubeClass.AppVM, "ghost", "red", "fedora", ImmutableDictionary<string, string>.Empty, Dom0));
        Assert.Null(Host.Snapshot().State.Find("ghost"));
        PassWrites();
        AwaitAssert(() => Assert.Null(Host.Snapshot().State.Find("ghost")), T);
        Ok(new CreateQube(QubeClass.AppVM, "ghost", "red", "fedora", ImmutableDictionary<string, string>.Empty, Dom0));
        Assert.NotNull(Host.Snapshot().State.Find("ghost"));
        Ok(new SetFeature("ghost", "alive", "1", Dom0));
    }

    [Fact]
    public void A_creation_whose_write_is_rejected_leaves_no_qube_behind()
    {
        RejectWrites();
        Refused(new CreateQube(QubeClass.AppVM, "ghost", "red", "fedora", ImmutableDictionary<string, string>.Empty, Dom0));
        Assert.Null(Host.Snapshot().State.Find("ghost"));
        PassWrites();
        Ok(new CreateQube(QubeClass.AppVM, "ghost", "red", "fedora", ImmutableDictionary<string, string>.Empty, Dom0));
        Assert.NotNull(Host.Snapshot().State.Find("ghost"));
    }

    [Fact]
    public void A_global_property_whose_write_fails_is_refused_and_not_applied()
    {
        FailWrites();
        var error = Refused(new SetGlobalProperty("default_netvm", "sys-firewall", Dom0));
        Assert.StartsWith("Failed to record the change", error.Message, StringComparison.Ordinal);
        Assert.False(Host.Snapshot().State.Globals.ContainsKey("default_netvm"));
        PassWrites();
        // The outcome of that write is unknown: further global changes are refused, visibly, rather than written past it.
        var refused = Refused(new SetGlobalProperty("default_netvm", "sys-firewall", Dom0));
        Assert.Contains("restart", refused.Message, StringComparison.Ordinal);
        Assert.False(Host.Snapshot().State.Globals.ContainsKey("default_netvm"));
        // Qube changes go on.
        Ok(new SetFeature("work", "still", "1", Dom0));
    }

    [Fact]
    public void A_global_property_whose_write_is_rejected_is_refused_and_the_next_one_succeeds()
    {
        RejectWrites();
        Refused(new SetGlobalProperty("default_netvm", "sys-firewall", Dom0));
        Assert.False(Host.Snapshot().State.Globals.ContainsKey("default_netvm"));
        PassWrites();
        Ok(new SetGlobalProperty("default_netvm", "sys-firewall", Dom0));
        Assert.Equal("sys-firewall", Host.Snapshot().State.Globals["default_netvm"]);
    }

    [Fact]
    public void An_unpause_acknowledged_when_thawed_answers_before_its_record_and_a_failed_record_leaves_the_qube_running()
    {
        Ok(new SetProperty("work", "netvm", "", Dom0));
        Ok(new StartQube("work", Dom0));
        Ok(new PauseQube("work", Dom0));
        // The caller (a qrexec call waiting for its preloaded disposable) is answered once the domain runs; the write
        // that fails after that restarts the actor, which takes the domain as the backend reports it: running.
        FailWrites();
        Ok(new UnpauseQube("work", Dom0, AcknowledgeWhenThawed: true));
        Assert.Equal(PowerState.Running, Backend.StateOf("work"));
        PassWrites();
        AwaitAssert(() => Assert.Equal(PowerState.Running, Qube("work").Power), T);
        Assert.Equal("Running", Ok(new PingQube("work", Dom0)).Output);
        // The same without the flag: the reply waits for the record, so a failed write is the caller's error.
        Ok(new PauseQube("work", Dom0));
        FailWrites();
        Assert.StartsWith("Failed to record the change", Refused(new UnpauseQube("work", Dom0)).Message, StringComparison.Ordinal);
        PassWrites();
    }
}
