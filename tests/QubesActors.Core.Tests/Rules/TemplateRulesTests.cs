using System.Collections.Immutable;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using QubesActors.Core.Tests.Model;
using Xunit;

namespace QubesActors.Core.Tests.Rules;

/// <summary>Templates and disposable templates (§1, §3.2, §3.4).</summary>
public class TemplateRulesTests
{
    [Fact]
    public void An_AppVM_without_template_gets_default_template()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "new");
        Assert.Equal("fedora", w.Effective("new", "template"));
        Assert.Equal("fedora", w.State.TemplateOf(w["new"])!.Name);
    }

    [Fact]
    public void An_AppVM_without_template_and_without_default_template_is_refused()
    {
        var w = new TestWorld();
        Assert.Throws<QubesValueError>(() => w.Create(QubeClass.AppVM, "new"));
        Assert.Null(w.State.Find("new"));
    }

    [Fact]
    public void An_unknown_template_on_create_is_QubesVMNotFoundError()
    {
        var e = Assert.Throws<QubesVMNotFoundError>(() => TestWorld.Installed().Create(QubeClass.AppVM, "new", "red", "ghost"));
        Assert.Equal("No such domain: 'ghost'", e.Message);
    }

    [Theory]
    [InlineData("work", "AppVM")]
    [InlineData("dom0", "AdminVM")]
    public void An_AppVM_template_must_be_a_TemplateVM(string template, string cls)
    {
        var w = TestWorld.Installed().Create(QubeClass.StandaloneVM, "sa");
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Create(QubeClass.AppVM, "new", "red", template));
        Assert.Equal($"wrong VM class: domains['{template}'] is of type {cls} and not TemplateVM", e.Message);
        var e2 = Assert.Throws<QubesPropertyValueError>(() => w.Set("work", "template", "sa"));
        Assert.Equal("wrong VM class: domains['sa'] is of type StandaloneVM and not TemplateVM", e2.Message);
    }

    [Theory]
    [InlineData(QubeClass.TemplateVM)]
    [InlineData(QubeClass.StandaloneVM)]
    public void Qubes_without_templates_refuse_one(QubeClass cls)
    {
        Assert.Throws<QubesValueError>(() => TestWorld.Installed().Create(cls, "new", "red", "fedora"));
    }

    [Fact]
    public void The_template_changes_while_halted_and_the_AppVM_then_follows_the_new_one()
    {
        var w = TestWorld.Installed().Set("debian", "memory", "1500").Set("work", "template", "debian");
        Assert.Equal("debian", w.Effective("work", "template"));
        Assert.Equal("1500", w.Effective("work", "memory"));
    }

    [Fact]
    public void The_template_cannot_change_while_the_qube_is_running()
    {
        var w = TestWorld.Installed().Start("sys-net").Start("sys-firewall").Start("work");
        var e = Assert.Throws<QubesVMNotHaltedError>(() => w.Set("work", "template", "debian"));
        Assert.Equal("Cannot change template while qube is running", e.Message);
        w.Apply("work", new QubePaused { Time = w.Now, Cause = TestWorld.Dom0 });
        Assert.Throws<QubesVMNotHaltedError>(() => w.Set("work", "template", "debian"));
    }

    [Fact]
    public void The_template_cannot_be_unset_nor_reset()
    {
        var w = TestWorld.Installed();
        Assert.Throws<QubesPropertyValueError>(() => w.Set("work", "template", ""));
        Assert.Throws<QubesValueError>(() => w.Reset("work", "template"));
        Assert.Equal("fedora", w.Effective("work", "template"));
    }

    [Fact]
    public void A_named_DispVM_needs_a_template_with_template_for_dispvms()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Create(QubeClass.DispVM, "d", "red", "work"));
        Assert.Equal("Invalid value 'work' for property 'template' of d: template_for_dispvms=False", e.Message);
        Assert.Throws<QubesPropertyValueError>(() => w.Create(QubeClass.DispVM, "d", "red", "fedora"));
        w.Create(QubeClass.StandaloneVM, "sa-dvm", "red", null, ("template_for_dispvms", "True"));
        w.Create(QubeClass.DispVM, "d1", "red", "sa-dvm").Create(QubeClass.DispVM, "d2", "red", "default-dvm");
        Assert.Equal("False", w.Effective("d1", "auto_cleanup"));
    }

    [Fact]
    public void A_named_DispVM_without_template_uses_the_global_default_dispvm()
    {
        var w = TestWorld.Installed().Create(QubeClass.DispVM, "d");
        Assert.Equal("default-dvm", w.Effective("d", "template"));
        w.ResetGlobal("default_dispvm");
        Assert.Throws<QubesValueError>(() => w.Create(QubeClass.DispVM, "d2"));
    }

    [Fact]
    public void A_disposables_template_can_only_change_to_another_disposable_template()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "other-dvm", "red", null, ("template_for_dispvms", "True"));
        var disp = w.CreateDisposable("default-dvm");
        Assert.Throws<QubesPropertyValueError>(() => w.Set(disp, "template", "work"));
        w.Set(disp, "template", "other-dvm");
        Assert.Equal("other-dvm", w.Effective(disp, "default_dispvm"));
    }

    [Theory]
    [InlineData("default_dispvm")]
    [InlineData("management_dispvm")]
    public void Per_qube_disposable_templates_must_have_template_for_dispvms(string property)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Set("work", property, "sys-net"));
        Assert.Equal($"Invalid value 'sys-net' for property '{property}' of work: template_for_dispvms=False", e.Message);
        w.Set("work", property, "default-dvm").Set("work", property, "");
        Assert.Null(w.Effective("work", property));
    }

    private static void AssertTemplateForDispvmsFalseRefused(TestWorld w, string qube = "default-dvm")
    {
        var e = Assert.Throws<QubesVMInUseError>(() => w.Set(qube, "template_for_dispvms", "False"));
        Assert.StartsWith("Cannot change template_for_dispvms to False while", e.Message);
        Assert.Throws<QubesVMInUseError>(() => w.Reset(qube, "template_for_dispvms"));
    }

    [Fact]
    public void Template_for_dispvms_false_is_refused_while_it_is_the_global_default_dispvm()
    {
        AssertTemplateForDispvmsFalseRefused(TestWorld.Installed());
    }

    [Fact]
    public void Template_for_dispvms_false_is_refused_while_it_is_the_global_management_dispvm()
    {
        AssertTemplateForDispvmsFalseRefused(TestWorld.Installed().ResetGlobal("default_dispvm").Global("management_dispvm", "default-dvm"));
    }

    [Theory]
    [InlineData("default_dispvm")]
    [InlineData("management_dispvm")]
    public void Template_for_dispvms_false_is_refused_while_a_qube_names_it_explicitly(string property)
    {
        AssertTemplateForDispvmsFalseRefused(TestWorld.Installed().Set("work", property, "default-dvm").ResetGlobal("default_dispvm"));
    }

    [Fact]
    public void Template_for_dispvms_false_is_refused_while_a_DispVM_is_based_on_it()
    {
        var w = TestWorld.Installed();
        w.CreateDisposable("default-dvm");
        w.ResetGlobal("default_dispvm");
        AssertTemplateForDispvmsFalseRefused(w);
    }

    [Fact]
    public void Template_for_dispvms_false_is_allowed_once_unused()
    {
        var w = TestWorld.Installed().ResetGlobal("default_dispvm").Set("default-dvm", "template_for_dispvms", "off");
        Assert.False(w.State.EffectiveBool(w["default-dvm"], "template_for_dispvms"));
        Assert.Equal("appvm-red", w.Effective("default-dvm", "icon"));
    }

    [Fact]
    public void A_disposable_template_cannot_change_its_template_while_its_disposables_run()
    {
        var w = TestWorld.Installed();
        var disp = w.CreateDisposable("default-dvm");
        w.Start("sys-net").Start("sys-firewall").Start(disp);
        var e = Assert.Throws<QubesVMInUseError>(() => w.Set("default-dvm", "template", "debian"));
        Assert.Equal("QubesVMInUseError", e.QubesClassName);
        w.Stop(disp).Set("default-dvm", "template", "debian");
    }
}

/// <summary>admin.vm.CreateDisposable (§3.4).</summary>
public class CreateDisposableTests
{
    private static TestWorld Dvm()
    {
        var w = TestWorld.Installed()
            .Set("default-dvm", "memory", "1000")
            .Set("default-dvm", "vcpus", "4")
            .Set("default-dvm", "netvm", "sys-net")
            .Set("default-dvm", "debug", "True")
            .Set("default-dvm", "kernelopts", "quiet")
            .Set("default-dvm", "autostart", "True")
            .Set("default-dvm", "installed_by_rpm", "True")
            .Tag("default-dvm", "project-x")
            .Feature("default-dvm", "appmenus-dispvm", "1")
            .Feature("default-dvm", "preload-dispvm-max", "2")
            .Feature("default-dvm", "service.cups", "1");
        var firewall = ImmutableArray.Create("action=accept dsthost=example.com", "action=drop");
        return w.Apply("default-dvm", new QubeFirewallSet(firewall) { Time = w.Now, Cause = TestWorld.Dom0 });
    }

    private static QubeCreated Create(TestWorld w, string template = "default-dvm", string caller = "work", int dispId = 1234) =>
        CollectionRules.CreateDisposable(w.State, template, caller, EventCause.Admin(caller), w.Now, Guid.NewGuid(), dispId);

    [Fact]
    public void The_disposable_is_a_DispVM_named_after_its_dispid_with_auto_cleanup()
    {
        var e = Create(Dvm());
        Assert.Equal(QubeClass.DispVM, e.Class);
        Assert.Equal("disp1234", e.Name);
        Assert.Equal(1234, e.DispId);
        Assert.Equal("True", e.Properties["auto_cleanup"]);
        Assert.Equal("default-dvm", e.Properties["template"]);
        Assert.Equal("red", e.Label);
    }

    [Fact]
    public void It_gets_the_lowest_free_qid()
    {
        var w = Dvm();
        Assert.Equal(w.State.NextQid(), Create(w).Qid);
    }

    [Fact]
    public void Explicit_cloneable_properties_are_copied_and_others_are_not()
    {
        var e = Create(Dvm());
        Assert.Equal("1000", e.Properties["memory"]);
        Assert.Equal("4", e.Properties["vcpus"]);
        Assert.Equal("sys-net", e.Properties["netvm"]);
        Assert.Equal("True", e.Properties["debug"]);
        Assert.Equal("quiet", e.Properties["kernelopts"]);
        Assert.False(e.Properties.ContainsKey("autostart"));
        Assert.False(e.Properties.ContainsKey("installed_by_rpm"));
        Assert.False(e.Properties.ContainsKey("template_for_dispvms"));
        // Properties left at default on the template are not copied: they keep following it.
        Assert.False(e.Properties.ContainsKey("maxmem"));
        Assert.All(e.Properties.Keys.Where(k => k is not ("template" or "auto_cleanup")), k => Assert.True(QubeProperties.All[k].CopiedToDisposable, k));
    }

    [Fact]
    public void Tags_are_copied_plus_created_by_and_disp_created_by_the_caller()
    {
        var e = Create(Dvm(), caller: "work");
        Assert.Equal(["created-by-work", "disp-created-by-work", "project-x"], e.Tags);
    }

    [Fact]
    public void Features_are_copied_except_preload_dispvm_ones()
    {
        var e = Create(Dvm());
        Assert.Equal("1", e.Features["appmenus-dispvm"]);
        Assert.Equal("1", e.Features["service.cups"]);
        Assert.DoesNotContain(e.Features.Keys, k => k.StartsWith("preload-dispvm", StringComparison.Ordinal));
    }

    [Fact]
    public void Firewall_rules_are_copied()
    {
        var e = Create(Dvm());
        Assert.Equal(["action=accept dsthost=example.com", "action=drop"], e.Firewall!.Value.ToArray());
        Assert.Null(Create(TestWorld.Installed()).Firewall);
    }

    [Fact]
    public void Its_default_dispvm_is_its_own_template_and_it_stays_halted()
    {
        var w = Dvm();
        var e = Create(w);
        w.Apply(e.Name, e);
        Assert.Equal("default-dvm", w.Effective(e.Name, "default_dispvm"));
        Assert.Equal(PowerState.Halted, w[e.Name].Power);
        Assert.Equal("sys-net", w.Effective(e.Name, "netvm"));
    }

    [Theory]
    [InlineData("work")]
    [InlineData("fedora")]
    [InlineData("dom0")]
    public void A_base_without_template_for_dispvms_is_refused(string template)
    {
        var e = Assert.Throws<QubesValueError>(() => Create(TestWorld.Installed(), template));
        Assert.Equal("Refusing to create disposable out of app qube which has template_for_dispvms=False", e.Message);
    }

    [Fact]
    public void A_DispVM_cannot_be_the_base_of_another_disposable()
    {
        var w = TestWorld.Installed();
        var disp = w.CreateDisposable("default-dvm");
        Assert.Throws<QubesValueError>(() => Create(w, disp, dispId: 99));
    }

    [Fact]
    public void An_unknown_base_is_QubesVMNotFoundError()
    {
        Assert.Throws<QubesVMNotFoundError>(() => Create(TestWorld.Installed(), "ghost"));
    }

    [Fact]
    public void A_StandaloneVM_with_template_for_dispvms_can_be_a_base()
    {
        var w = TestWorld.Installed().Create(QubeClass.StandaloneVM, "sa-dvm", "orange", null, ("template_for_dispvms", "True"));
        var e = Create(w, "sa-dvm");
        Assert.Equal("sa-dvm", e.Properties["template"]);
        Assert.Equal("orange", e.Label);
    }
}
