using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Core.Tests.Model;
using Xunit;

namespace QubesActors.Core.Tests.Rules;

/// <summary>The netvm graph (§3.1).</summary>
public class NetworkGraphTests
{
    private const string LoopMessage = "Loops in network are unsupported";

    [Fact]
    public void A_netvm_must_provide_network()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Set("work", "netvm", "default-dvm"));
        Assert.Equal("The default-dvm qube does not provide network", e.Message);
        Assert.Equal(typeof(QubesValueError), e.GetType());
    }

    [Fact]
    public void Dom0_does_not_provide_network()
    {
        var e = Assert.Throws<QubesValueError>(() => TestWorld.Installed().Set("work", "netvm", "dom0"));
        Assert.Equal("The dom0 qube does not provide network", e.Message);
    }

    [Fact]
    public void A_qube_cannot_be_its_own_netvm()
    {
        var e = Assert.Throws<QubesValueError>(() => TestWorld.Installed().Set("sys-net", "netvm", "sys-net"));
        Assert.Equal(LoopMessage, e.Message);
    }

    [Fact]
    public void A_netvm_downstream_of_the_qube_closes_a_loop()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Set("sys-net", "netvm", "sys-firewall"));
        Assert.Equal(LoopMessage, e.Message);
        w.Create(QubeClass.AppVM, "vpn", "purple", null, ("provides_network", "True"), ("netvm", "sys-firewall"));
        Assert.Throws<QubesValueError>(() => w.Set("sys-net", "netvm", "vpn"));
        Assert.Throws<QubesValueError>(() => w.Set("sys-firewall", "netvm", "vpn"));
        w.Set("vpn", "netvm", "sys-net");
    }

    [Fact]
    public void A_loop_through_a_qube_that_only_defaults_to_default_netvm_is_refused()
    {
        // vpn follows default_netvm (sys-firewall); sys-firewall may not then use vpn.
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "vpn", "purple", null, ("provides_network", "True"));
        Assert.Equal("sys-firewall", w.Effective("vpn", "netvm"));
        var e = Assert.Throws<QubesValueError>(() => w.Set("sys-firewall", "netvm", "vpn"));
        Assert.Equal(LoopMessage, e.Message);
    }

    [Fact]
    public void Resetting_netvm_to_a_default_that_loops_is_refused()
    {
        // sys-net has netvm="" explicitly; its default would be sys-firewall, which uses sys-net.
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Reset("sys-net", "netvm"));
        Assert.Equal(LoopMessage, e.Message);
        Assert.Null(CollectionRules.FindLoop(w.State));
    }

    [Fact]
    public void Setting_netvm_to_none_is_always_allowed()
    {
        var w = TestWorld.Installed().Set("sys-firewall", "netvm", "").Set("work", "netvm", "");
        Assert.Null(w.Effective("sys-firewall", "netvm"));
        Assert.Null(CollectionRules.FindLoop(w.State));
    }

    [Fact]
    public void Default_netvm_must_provide_network()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Global("default_netvm", "work"));
        Assert.Equal("The work qube does not provide network", e.Message);
    }

    [Fact]
    public void Default_netvm_that_would_make_a_defaulting_netvm_its_own_uplink_is_refused()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "vpn", "purple", null, ("provides_network", "True"));
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Global("default_netvm", "vpn"));
        Assert.Equal("Network loop on 'vpn'", e.Message);
        Assert.Equal("sys-firewall", w.State.GlobalEffective("default_netvm"));
    }

    [Fact]
    public void Default_netvm_that_closes_a_longer_loop_through_defaults_is_refused()
    {
        // sys-net follows the default; sys-firewall uses sys-net; default_netvm=sys-firewall would loop both.
        var w = TestWorld.Installed().ResetGlobal("default_netvm").Reset("sys-net", "netvm");
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Global("default_netvm", "sys-firewall"));
        // The qube named is the one following the default that would sit on the loop (not sys-firewall, which is explicit).
        Assert.Equal("Network loop on 'sys-net'", e.Message);
        Assert.Null(CollectionRules.FindLoop(w.State));
    }

    [Fact]
    public void TemplateVMs_never_follow_default_netvm_so_they_do_not_loop()
    {
        // A TemplateVM that provides network and is left at default has no netvm: default_netvm may be it.
        var w = new TestWorld().Create(QubeClass.TemplateVM, "t", "black", null, ("provides_network", "True"));
        w.Global("default_netvm", "t");
        Assert.Null(w.Effective("t", "netvm"));
        Assert.Null(CollectionRules.FindLoop(w.State));
    }

    [Fact]
    public void Provides_network_false_is_refused_while_a_qube_uses_it_explicitly()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Set("sys-net", "provides_network", "False"));
        Assert.Equal("The qube is still used by other qubes, change theirs 'netvm' first", e.Message);
        Assert.Throws<QubesValueError>(() => w.Reset("sys-net", "provides_network"));
    }

    [Fact]
    public void Provides_network_false_is_refused_while_a_qube_uses_it_through_default_netvm()
    {
        var w = TestWorld.Installed();
        Assert.Throws<QubesValueError>(() => w.Set("sys-firewall", "provides_network", "0"));
        w.Set("work", "netvm", "sys-net").Set("default-dvm", "netvm", "sys-net");
        // Only qubes following the default are left; they still count.
        Assert.Throws<QubesValueError>(() => w.Set("sys-firewall", "provides_network", "0"));
    }

    [Fact]
    public void Provides_network_false_is_allowed_once_no_qube_uses_it()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "vpn", "purple", null, ("provides_network", "True"), ("netvm", "sys-firewall"));
        w.Set("vpn", "provides_network", "False");
        Assert.False(w.State.ProvidesNetwork(w["vpn"]));
        w.Set("vpn", "provides_network", "True").Reset("vpn", "provides_network");
        Assert.True(w.IsDefault("vpn", "provides_network"));
    }

    [Fact]
    public void A_running_qube_switching_to_a_stopped_netvm_is_QubesVMNotStartedError()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "vpn", "purple", null, ("provides_network", "True"), ("netvm", "sys-firewall"))
            .Start("sys-net").Start("sys-firewall").Start("work");
        var e = Assert.Throws<QubesVMNotStartedError>(() => w.Set("work", "netvm", "vpn"));
        Assert.Equal("Cannot dynamically attach to stopped qube vpn", e.Message);
        // Halted qubes may point anywhere; none is always fine for a running qube.
        w.Set("default-dvm", "netvm", "vpn").Set("work", "netvm", "");
        // Resetting to a default whose netvm is halted is refused the same way.
        w.Stop("sys-firewall");
        Assert.Throws<QubesVMNotStartedError>(() => w.Reset("work", "netvm"));
    }

    [Fact]
    public void NetVmChain_lists_the_uplinks_nearest_first_and_never_dom0()
    {
        var w = TestWorld.Installed();
        Assert.Equal(["sys-firewall", "sys-net"], w.State.NetVmChain(w["work"]).Select(q => q.Name));
        Assert.Equal(["sys-net"], w.State.NetVmChain(w["sys-firewall"]).Select(q => q.Name));
        Assert.Empty(w.State.NetVmChain(w["sys-net"]));
        Assert.Empty(w.State.NetVmChain(w["fedora"]));
        Assert.Empty(w.State.NetVmChain(w["dom0"]));
    }

    [Fact]
    public void ClientsOf_lists_explicit_and_defaulting_clients()
    {
        var w = TestWorld.Installed();
        Assert.Equal(["default-dvm", "work"], w.State.ClientsOf("sys-firewall").Select(q => q.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["sys-firewall"], w.State.ClientsOf("sys-net").Select(q => q.Name));
    }

    [Fact]
    public void CreatesLoop_and_FindLoop_on_a_hand_made_looped_state()
    {
        // Loaded configurations may contain loops (upstream breaks them on load); FindLoop must see them.
        var w = TestWorld.Installed();
        var looped = w.State.WithQube(w["sys-net"] with { Properties = w["sys-net"].Properties.SetItem("netvm", "sys-firewall") });
        // FindLoop names a qube on the loop, not a client (default-dvm, work) that merely leads into it.
        Assert.Equal("sys-firewall", CollectionRules.FindLoop(looped));
        Assert.True(CollectionRules.CreatesLoop(looped, "work", "sys-firewall"));
        Assert.False(CollectionRules.CreatesLoop(w.State, "work", "sys-firewall"));
        Assert.True(CollectionRules.CreatesLoop(w.State, "sys-net", "sys-firewall"));
        Assert.True(CollectionRules.CreatesLoop(w.State, "sys-net", "sys-net"));
    }
}

/// <summary>
/// For random acyclic collections and random netvm / default_netvm / provides_network changes: no accepted change
/// ever produces a loop, and every refusal is one of the documented network errors.
/// </summary>
[Properties(MaxTest = 150)]
public class NetworkGraphPropertyTests
{
    public sealed record Qube(QubeClass Class, bool ProvidesNetwork, int? NetVm);

    public sealed record Step(int Kind, int Qube, int Target);

    public sealed record Scenario(Qube[] Qubes, int? DefaultNetVm, Step[] Steps);

    private static string Name(int i) => $"q{i}";

    private static Gen<Scenario> Scenarios =>
        from count in Gen.Choose(2, 9)
        from qubes in Gen.CollectToArray(Enumerable.Range(0, count).Select(i =>
            from cls in Gen.Elements(QubeClass.AppVM, QubeClass.StandaloneVM, QubeClass.TemplateVM)
            from provides in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
            // An explicit uplink only to an earlier qube keeps the start acyclic; null = follow the default.
            from up in i == 0 ? Gen.Constant<int?>(null) : Gen.Frequency((2, Gen.Constant<int?>(null)), (3, Gen.Choose(-1, i - 1).Select(n => (int?)n)))
            select new Qube(cls, provides, up)))
        from def in Gen.Frequency((1, Gen.Constant<int?>(null)), (3, Gen.Choose(0, count - 1).Select(n => (int?)n)))
        from steps in Gen.CollectToArray(Enumerable.Range(0, 12).Select(_ =>
            from kind in Gen.Frequency((6, Gen.Constant(0)), (2, Gen.Constant(1)), (2, Gen.Constant(2)), (2, Gen.Constant(3)), (1, Gen.Constant(4)))
            from q in Gen.Choose(0, count - 1)
            from t in Gen.Choose(-1, count)
            select new Step(kind, q, t)))
        select new Scenario(qubes.ToArray(), def, steps.ToArray());

    /// <summary>Builds the collection through the rules; qubes whose uplink the rules refuse stay disconnected.</summary>
    private static TestWorld Build(Scenario s)
    {
        var w = new TestWorld().Create(QubeClass.TemplateVM, "base", "black");
        for (var i = 0; i < s.Qubes.Length; i++)
        {
            var q = s.Qubes[i];
            w.Create(q.Class, Name(i), "red", q.Class == QubeClass.AppVM ? "base" : null,
                ("provides_network", q.ProvidesNetwork ? "True" : "False"), ("netvm", ""));
        }
        for (var i = 0; i < s.Qubes.Length; i++)
        {
            var up = s.Qubes[i].NetVm;
            if (up is null)
                Try(() => w.Reset(Name(i), "netvm"));
            else if (up >= 0)
                Try(() => w.Set(Name(i), "netvm", Name(up.Value)));
        }
        if (s.DefaultNetVm is { } d)
            Try(() => w.Global("default_netvm", Name(d)));
        return w;
    }

    private static void Try(Action a)
    {
        try { a(); }
        catch (QubesValueError) { }
    }

    private static bool IsDocumentedNetworkRefusal(Exception e) => e switch
    {
        QubesPropertyValueError p => p.Message.StartsWith("Network loop on '", StringComparison.Ordinal),
        QubesValueError v => v.GetType() == typeof(QubesValueError)
                             && (v.Message == "Loops in network are unsupported"
                                 || v.Message == "The qube is still used by other qubes, change theirs 'netvm' first"
                                 || System.Text.RegularExpressions.Regex.IsMatch(v.Message, @"\AThe (q\d+|base|dom0) qube does not provide network\z")),
        _ => false,
    };

    [Property]
    public Property Accepted_network_changes_never_create_a_loop_and_refusals_are_the_documented_errors() =>
        Prop.ForAll(Scenarios.ToArbitrary(), s =>
        {
            var w = Build(s);
            if (CollectionRules.FindLoop(w.State) is { } initial)
                return false.Label($"building made a loop on {initial}");
            foreach (var step in s.Steps)
            {
                var qube = Name(step.Qube);
                var target = step.Target < 0 ? "" : step.Target == s.Qubes.Length ? "dom0" : Name(step.Target);
                try
                {
                    switch (step.Kind)
                    {
                        case 0: w.Set(qube, "netvm", target); break;
                        case 1: w.Reset(qube, "netvm"); break;
                        case 2: w.Global("default_netvm", target); break;
                        case 3: w.Set(qube, "provides_network", step.Target % 2 == 0 ? "False" : "True"); break;
                        default: w.Reset(qube, "provides_network"); break;
                    }
                }
                catch (Exception e) when (IsDocumentedNetworkRefusal(e))
                {
                }
                if (CollectionRules.FindLoop(w.State) is { } looped)
                    return false.Label($"loop on {looped} after {step}");
                foreach (var q in w.State.Qubes.Values)
                    if (w.State.NetVmOf(q) is { } n && !w.State.ProvidesNetwork(n))
                        return false.Label($"{q.Name} uses {n.Name}, which does not provide network, after {step}");
            }
            return true.ToProperty();
        });

    [Property]
    public Property The_netvm_chain_never_repeats_and_ends_at_a_qube_without_uplink() =>
        Prop.ForAll(Scenarios.ToArbitrary(), s =>
        {
            var w = Build(s);
            return w.State.Qubes.Values.All(q =>
            {
                var chain = w.State.NetVmChain(q);
                return chain.Select(c => c.Name).Distinct().Count() == chain.Count
                       && !chain.Any(c => c.Name == q.Name)
                       && (chain.Count == 0 || w.State.NetVmOf(chain[^1]) is null);
            });
        });
}
