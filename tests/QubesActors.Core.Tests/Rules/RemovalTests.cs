using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Core.Tests.Model;
using Xunit;

namespace QubesActors.Core.Tests.Rules;

/// <summary>Removal refusals (§3.3) in upstream's order, with their exact messages.</summary>
public class RemovalTests
{
    private static QubesVMInUseError InUse(TestWorld w, string qube, out string? detail)
    {
        string? d = null;
        var e = Assert.Throws<QubesVMInUseError>(() => CollectionRules.CheckRemove(w.State, qube, out d));
        detail = d;
        return e;
    }

    private static string InUseMessage(string qube) =>
        $"Domain is in use: '{qube}';  see 'journalctl -u qubesd -e' in dom0 for details";

    [Fact]
    public void Dom0_cannot_be_removed()
    {
        var e = InUse(TestWorld.Installed(), "dom0", out _);
        Assert.Equal("'dom0' cannot be removed", e.Message);
    }

    [Fact]
    public void A_qube_installed_by_rpm_cannot_be_removed_and_this_is_checked_before_the_power_state()
    {
        var w = TestWorld.Installed().Set("work", "installed_by_rpm", "True").Start("sys-net").Start("sys-firewall").Start("work");
        var e = InUse(w, "work", out _);
        Assert.Equal("VM installed by package manager: work", e.Message);
    }

    [Fact]
    public void A_running_qube_cannot_be_removed_and_this_is_checked_before_references()
    {
        var w = TestWorld.Installed().Start("sys-net");
        var e = Assert.Throws<QubesVMNotHaltedError>(() => CollectionRules.CheckRemove(w.State, "sys-net", out _));
        Assert.Equal("Domain is not powered off: 'sys-net'", e.Message);
    }

    [Theory]
    [InlineData(PowerState.Paused)]
    [InlineData(PowerState.Suspended)]
    [InlineData(PowerState.Transient)]
    [InlineData(PowerState.Halting)]
    [InlineData(PowerState.Crashed)]
    public void Any_active_state_blocks_removal(PowerState state)
    {
        var w = TestWorld.Installed();
        var c = w.State.WithQube(w["work"] with { Power = state });
        Assert.Throws<QubesVMNotHaltedError>(() => CollectionRules.CheckRemove(c, "work", out _));
    }

    [Theory]
    [InlineData("default_netvm", "sys-firewall")]
    [InlineData("default_template", "fedora")]
    [InlineData("default_dispvm", "default-dvm")]
    public void A_qube_named_by_a_global_property_cannot_be_removed(string global, string qube)
    {
        var w = TestWorld.Installed();
        var e = InUse(w, qube, out var detail);
        Assert.Equal(InUseMessage(qube), e.Message);
        Assert.StartsWith($"Cannot remove {qube} as it is used by ", detail);
        Assert.Contains($"@GLOBAL:{global}", detail);
    }

    [Theory]
    [InlineData("updatevm")]
    [InlineData("clockvm")]
    [InlineData("default_guivm")]
    [InlineData("default_audiovm")]
    [InlineData("management_dispvm")]
    public void Every_VM_valued_global_blocks_removal(string global)
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "svc", "red", null, ("template_for_dispvms", "True")).Global(global, "svc");
        InUse(w, "svc", out var detail);
        Assert.Equal($"Cannot remove svc as it is used by @GLOBAL:{global}", detail);
    }

    [Fact]
    public void The_journal_detail_lists_globals_then_explicit_references_by_qube_name()
    {
        var w = TestWorld.Installed().Set("work", "netvm", "sys-firewall");
        var e = InUse(w, "sys-firewall", out var detail);
        Assert.Equal(InUseMessage("sys-firewall"), e.Message);
        Assert.Equal("Cannot remove sys-firewall as it is used by @GLOBAL:default_netvm, work:netvm", detail);
    }

    [Fact]
    public void Qubes_only_defaulting_to_it_are_covered_by_the_global_and_not_listed()
    {
        // default-dvm and work follow default_netvm=sys-firewall without naming it.
        var w = TestWorld.Installed();
        InUse(w, "sys-firewall", out var detail);
        Assert.Equal("Cannot remove sys-firewall as it is used by @GLOBAL:default_netvm", detail);
        Assert.Equal(["@GLOBAL:default_netvm"], CollectionRules.References(w.State, "sys-firewall"));
    }

    [Theory]
    [InlineData("netvm")]
    [InlineData("default_dispvm")]
    [InlineData("management_dispvm")]
    [InlineData("guivm")]
    [InlineData("audiovm")]
    public void An_explicit_reference_from_another_qube_blocks_removal(string property)
    {
        var w = TestWorld.Installed()
            .Create(QubeClass.AppVM, "x", "red", null, ("provides_network", "True"), ("template_for_dispvms", "True"), ("netvm", ""))
            .Set("work", property, "x");
        var e = InUse(w, "x", out var detail);
        Assert.Equal(InUseMessage("x"), e.Message);
        Assert.Equal($"Cannot remove x as it is used by work:{property}", detail);
    }

    [Fact]
    public void A_template_in_use_by_an_AppVM_cannot_be_removed()
    {
        var w = TestWorld.Installed();
        CollectionRules.CheckRemove(w.State, "debian", out _);
        w.Set("work", "template", "debian");
        InUse(w, "debian", out var detail);
        Assert.Equal("Cannot remove debian as it is used by work:template", detail);
    }

    [Fact]
    public void References_are_checked_before_device_assignments()
    {
        var w = TestWorld.Installed().AssignPci("work", "sys-firewall:00_01.0");
        var e = InUse(w, "sys-firewall", out _);
        Assert.Equal(InUseMessage("sys-firewall"), e.Message);
    }

    [Fact]
    public void The_backend_of_devices_assigned_to_other_qubes_cannot_be_removed()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "sys-usb", "red")
            .Apply("work", new QubeDeviceAssigned("usb", "sys-usb:2-1", "auto-attach", System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty) { Time = TestWorld.T0, Cause = TestWorld.Dom0 })
            .Apply("default-dvm", new QubeDeviceAssigned("usb", "sys-usb:2-2", "auto-attach", System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty) { Time = TestWorld.T0, Cause = TestWorld.Dom0 });
        var e = InUse(w, "sys-usb", out var detail);
        Assert.Null(detail);
        Assert.StartsWith("VM has devices assigned to other VMs: ", e.Message);
        Assert.Contains("sys-usb:2-1", e.Message);
        Assert.Contains("sys-usb:2-2", e.Message);
    }

    [Fact]
    public void A_device_of_a_qube_with_a_name_prefix_does_not_block_removal()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "sys-usb", "red").Create(QubeClass.AppVM, "sys-usb2", "red")
            .Apply("work", new QubeDeviceAssigned("usb", "sys-usb2:2-1", "auto-attach", System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty) { Time = TestWorld.T0, Cause = TestWorld.Dom0 });
        CollectionRules.CheckRemove(w.State, "sys-usb", out var detail);
        Assert.Null(detail);
    }

    [Fact]
    public void An_unreferenced_halted_qube_can_be_removed_and_disappears()
    {
        var w = TestWorld.Installed();
        CollectionRules.CheckRemove(w.State, "work", out var detail);
        Assert.Null(detail);
        w.Apply("work", new QubeRemoved { Time = w.Now, Cause = TestWorld.Dom0 });
        Assert.Null(w.State.Find("work"));
        Assert.Throws<QubesVMNotFoundError>(() => w.State.Get("work"));
    }

    [Fact]
    public void After_the_references_are_gone_the_qube_can_be_removed()
    {
        var w = TestWorld.Installed().Set("work", "netvm", "sys-net").Set("default-dvm", "netvm", "")
            .Global("default_netvm", "sys-net");
        w.Remove("sys-firewall");
        Assert.Null(w.State.Find("sys-firewall"));
    }

    [Fact]
    public void Removing_an_unknown_qube_is_QubesVMNotFoundError()
    {
        Assert.Throws<QubesVMNotFoundError>(() => CollectionRules.CheckRemove(TestWorld.Installed().State, "ghost", out _));
    }
}

/// <summary>Tags and features (§1.1, §1.4).</summary>
public class TagAndFeatureTests
{
    private static readonly DateTimeOffset T = TestWorld.T0;

    [Fact]
    public void A_tag_is_added_once_and_adding_it_again_is_a_no_op()
    {
        var w = TestWorld.Installed();
        var e = CollectionRules.AddTag(w.State, "work", "project-x", "dom0", TestWorld.Dom0, T);
        Assert.Equal(new QubeTagAdded("project-x") { Time = T, Cause = TestWorld.Dom0 }, e);
        w.Apply("work", e!);
        Assert.Null(CollectionRules.AddTag(w.State, "work", "project-x", "dom0", TestWorld.Dom0, T));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("a.b")]
    [InlineData("a:b")]
    [InlineData("\u00e9")]
    public void Tags_are_ascii_letters_digits_underscore_and_hyphen_only(string tag)
    {
        Assert.Throws<QubesInvalidTagError>(() => CollectionRules.AddTag(TestWorld.Installed().State, "work", tag, "dom0", TestWorld.Dom0, T));
    }

    [Fact]
    public void Only_dom0_can_add_or_remove_created_by_tags()
    {
        var w = TestWorld.Installed().Tag("work", "created-by-dom0");
        Assert.Throws<PermissionDenied>(() => CollectionRules.AddTag(w.State, "work", "created-by-mgmt", "mgmt", TestWorld.Dom0, T));
        Assert.Throws<PermissionDenied>(() => CollectionRules.RemoveTag(w.State, "work", "created-by-dom0", "mgmt", TestWorld.Dom0, T));
        Assert.NotNull(CollectionRules.RemoveTag(w.State, "work", "created-by-dom0", "dom0", TestWorld.Dom0, T));
    }

    [Fact]
    public void Removing_a_missing_tag_is_QubesTagNotFoundError()
    {
        var e = Assert.Throws<QubesTagNotFoundError>(() => CollectionRules.RemoveTag(TestWorld.Installed().State, "work", "nope", "dom0", TestWorld.Dom0, T));
        Assert.Equal("Tag not set for domain work: nope", e.Message);
    }

    [Fact]
    public void Features_are_set_and_removed()
    {
        var w = TestWorld.Installed().Feature("work", "service.cups", "1");
        Assert.Equal("1", w["work"].Features["service.cups"]);
        w.Apply("work", CollectionRules.RemoveFeature(w.State, "work", "service.cups", TestWorld.Dom0, T));
        Assert.Empty(w["work"].Features);
        var e = Assert.Throws<QubesFeatureNotFoundError>(() => CollectionRules.RemoveFeature(w.State, "work", "service.cups", TestWorld.Dom0, T));
        Assert.Equal("Feature not set for domain work: service.cups", e.Message);
    }

    [Theory]
    [InlineData("deferred-netvm-original")]
    [InlineData("preload-dispvm")]
    [InlineData("preload-dispvm-completed")]
    [InlineData("preload-dispvm-in-progress")]
    public void Protected_features_cannot_be_set_through_the_API(string feature)
    {
        Assert.Throws<PermissionDenied>(() => CollectionRules.SetFeature(TestWorld.Installed().State, "work", feature, "1", TestWorld.Dom0, T));
    }

    [Theory]
    [InlineData("a b", "1")]
    [InlineData("", "1")]
    [InlineData("ok", "line\nbreak")]
    public void Malformed_feature_names_or_values_are_protocol_errors(string feature, string value)
    {
        Assert.Throws<ProtocolError>(() => CollectionRules.SetFeature(TestWorld.Installed().State, "work", feature, value, TestWorld.Dom0, T));
    }
}
