using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using Xunit;

namespace QubesActors.Core.Tests.Model;

/// <summary>Property defaults and their sources per class (§1.2, §1.3).</summary>
public class PropertyDefaultTests
{
    private static TestWorld Plain() => new TestWorld()
        .Create(QubeClass.TemplateVM, "fedora")
        .Create(QubeClass.AppVM, "work", "blue", "fedora")
        .Create(QubeClass.StandaloneVM, "sa");

    [Theory]
    [InlineData("memory", "400")]
    [InlineData("vcpus", "2")]
    [InlineData("maxmem", "4000")]
    [InlineData("virt_mode", "pvh")]
    [InlineData("kernel", "")]
    [InlineData("kernelopts", "swiotlb=2048")]
    [InlineData("default_user", "user")]
    [InlineData("qrexec_timeout", "60")]
    [InlineData("shutdown_timeout", "60")]
    [InlineData("provides_network", "False")]
    [InlineData("autostart", "False")]
    [InlineData("debug", "False")]
    [InlineData("installed_by_rpm", "False")]
    [InlineData("include_in_backups", "True")]
    [InlineData("mac", "00:16:3e:5e:6c:00")]
    [InlineData("guivm", "dom0")]
    [InlineData("audiovm", "dom0")]
    [InlineData("xid", "-1")]
    [InlineData("start_time", "")]
    public void Qubes_without_a_template_use_the_documented_defaults(string property, string expected)
    {
        var w = Plain();
        foreach (var qube in new[] { "fedora", "sa" })
        {
            Assert.Equal(expected, w.Effective(qube, property));
            Assert.True(w.IsDefault(qube, property));
        }
    }

    [Theory]
    [InlineData("memory", "1234")]
    [InlineData("vcpus", "7")]
    [InlineData("maxmem", "2222")]
    [InlineData("virt_mode", "hvm")]
    [InlineData("kernel", "6.6.1")]
    [InlineData("kernelopts", "quiet")]
    [InlineData("default_user", "root")]
    [InlineData("qrexec_timeout", "120")]
    [InlineData("shutdown_timeout", "30")]
    public void An_AppVM_follows_its_template_while_left_at_default(string property, string value)
    {
        var w = Plain();
        var before = w.Effective("work", property);
        w.Set("fedora", property, value);
        Assert.Equal(value, w.Effective("work", property));
        Assert.True(w.IsDefault("work", property));
        Assert.NotEqual(value, before);
    }

    [Theory]
    [InlineData("memory", "1234", "800")]
    [InlineData("vcpus", "7", "1")]
    [InlineData("kernel", "6.6.1", "")]
    [InlineData("default_user", "root", "alice")]
    [InlineData("qrexec_timeout", "120", "5")]
    public void An_explicit_value_wins_over_the_template_and_reset_returns_to_following_it(string property, string templateValue, string own)
    {
        var w = Plain().Set("fedora", property, templateValue).Set("work", property, own);
        Assert.Equal(own, w.Effective("work", property));
        Assert.False(w.IsDefault("work", property));
        w.Reset("work", property);
        Assert.True(w.IsDefault("work", property));
        Assert.Equal(templateValue, w.Effective("work", property));
        // The default is dynamic: it keeps following later changes of the template.
        w.Reset("fedora", property);
        Assert.Equal(w.Effective("fedora", property), w.Effective("work", property));
    }

    [Fact]
    public void A_disposable_follows_its_AppVM_template_which_follows_its_TemplateVM()
    {
        var w = TestWorld.Installed();
        var disp = w.CreateDisposable("default-dvm");
        w.Set("fedora", "memory", "999");
        Assert.Equal("999", w.Effective(disp, "memory"));
        w.Set("default-dvm", "memory", "777");
        Assert.Equal("777", w.Effective(disp, "memory"));
    }

    [Fact]
    public void Kernel_follows_the_global_default_kernel_when_there_is_no_template()
    {
        var w = Plain().Global("default_kernel", "6.1.2");
        Assert.Equal("6.1.2", w.Effective("sa", "kernel"));
        Assert.Equal("6.1.2", w.Effective("fedora", "kernel"));
        Assert.Equal("6.1.2", w.Effective("work", "kernel"));
        w.Set("fedora", "kernel", "");
        Assert.Equal("", w.Effective("work", "kernel"));
    }

    [Theory]
    [InlineData("qrexec_timeout", "default_qrexec_timeout")]
    [InlineData("shutdown_timeout", "default_shutdown_timeout")]
    public void Timeouts_follow_the_global_default_when_there_is_no_template(string property, string global)
    {
        var w = Plain().Global(global, "90");
        Assert.Equal("90", w.Effective("sa", property));
        Assert.Equal("90", w.Effective("work", property));
        w.Set("fedora", property, "15");
        Assert.Equal("15", w.Effective("work", property));
        Assert.Equal("90", w.Effective("sa", property));
    }

    [Fact]
    public void Management_dispvm_follows_the_template_then_the_global()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "mgmt-dvm", "black", null, ("template_for_dispvms", "True"));
        Assert.Null(w.Effective("work", "management_dispvm"));
        w.Global("management_dispvm", "default-dvm");
        Assert.Equal("default-dvm", w.Effective("work", "management_dispvm"));
        Assert.Equal("default-dvm", w.Effective("fedora", "management_dispvm"));
        w.Set("fedora", "management_dispvm", "mgmt-dvm");
        Assert.Equal("mgmt-dvm", w.Effective("work", "management_dispvm"));
        Assert.True(w.IsDefault("work", "management_dispvm"));
    }

    [Fact]
    public void Netvm_follows_the_global_default_netvm_for_app_and_standalone_qubes()
    {
        var w = TestWorld.Installed().Create(QubeClass.StandaloneVM, "sa");
        Assert.Equal("sys-firewall", w.Effective("work", "netvm"));
        Assert.Equal("sys-firewall", w.Effective("sa", "netvm"));
        Assert.True(w.IsDefault("work", "netvm"));
        w.Global("default_netvm", "sys-net");
        Assert.Equal("sys-net", w.Effective("work", "netvm"));
        w.Global("default_netvm", "");
        Assert.Null(w.Effective("work", "netvm"));
        w.ResetGlobal("default_netvm");
        Assert.Null(w.Effective("work", "netvm"));
    }

    [Fact]
    public void A_TemplateVM_defaults_to_no_netvm_whatever_default_netvm_is()
    {
        var w = TestWorld.Installed();
        Assert.Equal("sys-firewall", w.State.GlobalEffective("default_netvm"));
        Assert.Null(w.Effective("fedora", "netvm"));
        Assert.True(w.IsDefault("fedora", "netvm"));
        w.Set("fedora", "netvm", "sys-firewall");
        Assert.Equal("sys-firewall", w.Effective("fedora", "netvm"));
        w.Reset("fedora", "netvm");
        Assert.Null(w.Effective("fedora", "netvm"));
    }

    [Fact]
    public void An_explicit_empty_netvm_means_none_and_is_not_default()
    {
        var w = TestWorld.Installed().Set("work", "netvm", "");
        Assert.Null(w.Effective("work", "netvm"));
        Assert.False(w.IsDefault("work", "netvm"));
        Assert.Empty(w.State.NetVmChain(w["work"]));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("None")]
    public void None_spellings_set_a_vm_property_to_none(string none)
    {
        var w = TestWorld.Installed().Set("work", "netvm", none);
        Assert.Equal("", w["work"].Properties["netvm"]);
        Assert.Null(w.Effective("work", "netvm"));
    }

    [Fact]
    public void Default_dispvm_follows_the_global_but_a_disposable_defaults_to_its_own_template()
    {
        var w = TestWorld.Installed().Create(QubeClass.AppVM, "other-dvm", "red", null, ("template_for_dispvms", "True"));
        Assert.Equal("default-dvm", w.Effective("work", "default_dispvm"));
        Assert.Equal("default-dvm", w.Effective("dom0", "default_dispvm"));
        var disp = w.CreateDisposable("other-dvm");
        Assert.Equal("other-dvm", w.Effective(disp, "default_dispvm"));
        Assert.True(w.IsDefault(disp, "default_dispvm"));
        w.Global("default_dispvm", "other-dvm");
        Assert.Equal("other-dvm", w.Effective("work", "default_dispvm"));
    }

    [Fact]
    public void Guivm_and_audiovm_follow_their_global_defaults()
    {
        var w = TestWorld.Installed().Create(QubeClass.StandaloneVM, "gui", "black");
        Assert.Equal("dom0", w.Effective("work", "guivm"));
        w.Global("default_guivm", "gui").Global("default_audiovm", "");
        Assert.Equal("gui", w.Effective("work", "guivm"));
        Assert.Null(w.Effective("work", "audiovm"));
    }

    [Fact]
    public void Virt_mode_and_kernelopts_and_maxmem_change_when_a_PCI_device_is_assigned()
    {
        var w = TestWorld.Installed().Set("fedora", "kernelopts", "quiet");
        Assert.Equal("pvh", w.Effective("sys-net", "virt_mode"));
        Assert.Equal("quiet", w.Effective("sys-net", "kernelopts"));
        w.AssignPci("sys-net", "dom0:00_14.3");
        Assert.Equal("hvm", w.Effective("sys-net", "virt_mode"));
        Assert.Equal("", w.Effective("sys-net", "kernelopts"));
        Assert.Equal("0", w.Effective("sys-net", "maxmem"));
    }

    [Fact]
    public void Pvh_is_refused_while_PCI_devices_are_assigned()
    {
        var w = TestWorld.Installed().AssignPci("sys-net", "dom0:00_14.3");
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Set("sys-net", "virt_mode", "pvh"));
        Assert.Equal("pvh mode can't be set if pci devices are attached", e.Message);
        w.Set("sys-net", "virt_mode", "PV");
        Assert.Equal("pv", w.Effective("sys-net", "virt_mode"));
    }

    [Fact]
    public void Maxmem_of_a_Linux_qube_defaults_to_ten_times_memory_capped_at_half_the_host()
    {
        var w = Plain().Feature("sa", "os", "Linux").Set("sa", "memory", "300");
        Assert.Equal("3000", w.Effective("sa", "maxmem"));
        w.Set("sa", "memory", "2000");
        var half = int.Parse(w.State.GlobalEffective("maxmem")!, System.Globalization.CultureInfo.InvariantCulture) / 2;
        Assert.Equal(Math.Min(20000, half).ToString(System.Globalization.CultureInfo.InvariantCulture), w.Effective("sa", "maxmem"));
        // Without the os feature the default is 4000.
        Assert.Equal("4000", w.Effective("fedora", "maxmem"));
    }

    [Fact]
    public void Maxmem_is_zero_for_an_HVM_qube_without_qrexec_and_normal_once_it_has_the_tools()
    {
        var w = Plain().Set("sa", "virt_mode", "hvm");
        Assert.Equal("0", w.Effective("sa", "maxmem"));
        w.Feature("sa", "qrexec", "1");
        Assert.Equal("4000", w.Effective("sa", "maxmem"));
        // The qrexec feature is looked up through the template.
        w.Set("work", "virt_mode", "hvm");
        Assert.Equal("0", w.Effective("work", "maxmem"));
        w.Feature("fedora", "qrexec", "1");
        Assert.Equal("4000", w.Effective("work", "maxmem"));
    }

    [Fact]
    public void Include_in_backups_is_false_for_auto_cleanup_disposables_and_true_for_named_ones()
    {
        var w = TestWorld.Installed().Create(QubeClass.DispVM, "named-disp", "red", "default-dvm");
        var disp = w.CreateDisposable("default-dvm");
        Assert.Equal("True", w.Effective(disp, "auto_cleanup"));
        Assert.Equal("False", w.Effective(disp, "include_in_backups"));
        Assert.Equal("False", w.Effective("named-disp", "auto_cleanup"));
        Assert.Equal("True", w.Effective("named-disp", "include_in_backups"));
    }

    [Fact]
    public void Updateable_is_true_exactly_for_qubes_without_a_template_and_is_read_only()
    {
        var w = Plain();
        Assert.Equal("True", w.Effective("fedora", "updateable"));
        Assert.Equal("True", w.Effective("sa", "updateable"));
        Assert.Equal("False", w.Effective("work", "updateable"));
        var e = Assert.Throws<QubesValueError>(() => w.Set("fedora", "updateable", "False"));
        Assert.Equal("Property 'updateable' of fedora is read-only", e.Message);
    }

    [Fact]
    public void Klass_reports_the_class_name()
    {
        var w = TestWorld.Installed();
        Assert.Equal("AdminVM", w.Effective("dom0", "klass"));
        Assert.Equal("TemplateVM", w.Effective("fedora", "klass"));
        Assert.Equal("AppVM", w.Effective("work", "klass"));
        Assert.Equal("DispVM", w.Effective(w.CreateDisposable("default-dvm"), "klass"));
        Assert.False(w.IsDefault("work", "klass"));
    }

    [Fact]
    public void Xid_and_start_time_follow_the_power_state()
    {
        var w = TestWorld.Installed().Start("sys-net");
        Assert.NotEqual("-1", w.Effective("sys-net", "xid"));
        Assert.Equal(TestWorld.T0.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), w.Effective("sys-net", "start_time"));
        w.Stop("sys-net");
        Assert.Equal("-1", w.Effective("sys-net", "xid"));
        Assert.Equal("", w.Effective("sys-net", "start_time"));
    }

    [Fact]
    public void Name_qid_uuid_label_template_are_never_reported_as_default()
    {
        var w = TestWorld.Installed();
        foreach (var p in new[] { "name", "qid", "uuid", "label", "klass", "template" })
            Assert.False(w.IsDefault("work", p), p);
        Assert.Equal("fedora", w.Effective("work", "template"));
    }

    [Fact]
    public void Restart_defaults_to_permanent_for_service_qubes_and_temporary_otherwise()
    {
        var w = TestWorld.Installed();
        Assert.Equal("permanent", w.Effective("sys-net", "restart"));
        Assert.Equal("temporary", w.Effective("work", "restart"));
        w.Feature("work", "servicevm", "1");
        Assert.Equal("permanent", w.Effective("work", "restart"));
        Assert.Equal("5", w.Effective("work", "restart_intensity"));
        Assert.Equal("60", w.Effective("work", "restart_period"));
    }

    [Fact]
    public void Each_class_has_exactly_its_own_properties()
    {
        Assert.Contains(QubeProperties.For(QubeClass.AppVM), p => p.Name == "template");
        Assert.Contains(QubeProperties.For(QubeClass.DispVM), p => p.Name == "template");
        Assert.DoesNotContain(QubeProperties.For(QubeClass.TemplateVM), p => p.Name == "template");
        Assert.DoesNotContain(QubeProperties.For(QubeClass.StandaloneVM), p => p.Name == "template");
        Assert.Contains(QubeProperties.For(QubeClass.AppVM), p => p.Name == "template_for_dispvms");
        Assert.Contains(QubeProperties.For(QubeClass.StandaloneVM), p => p.Name == "template_for_dispvms");
        Assert.DoesNotContain(QubeProperties.For(QubeClass.TemplateVM), p => p.Name == "template_for_dispvms");
        Assert.DoesNotContain(QubeProperties.For(QubeClass.DispVM), p => p.Name == "template_for_dispvms");
        Assert.Contains(QubeProperties.For(QubeClass.DispVM), p => p.Name == "dispid");
        Assert.Contains(QubeProperties.For(QubeClass.DispVM), p => p.Name == "auto_cleanup");
        Assert.DoesNotContain(QubeProperties.For(QubeClass.AppVM), p => p.Name is "dispid" or "auto_cleanup");
        Assert.DoesNotContain(QubeProperties.For(QubeClass.AdminVM), p => p.Name is "netvm" or "memory" or "provides_network");
        Assert.Equal(QubeProperties.For(QubeClass.AppVM).Select(p => p.Name).Order(StringComparer.Ordinal), QubeProperties.For(QubeClass.AppVM).Select(p => p.Name));
    }

    [Theory]
    [InlineData("name", "str")]
    [InlineData("qid", "int")]
    [InlineData("uuid", "str")] // qubesd serialises every type but vm, int, bool and label as str
    [InlineData("label", "label")]
    [InlineData("netvm", "vm")]
    [InlineData("template", "vm")]
    [InlineData("memory", "int")]
    [InlineData("provides_network", "bool")]
    [InlineData("kernel", "str")]
    public void Property_types_carry_their_Admin_API_names(string property, string type)
    {
        Assert.Equal(type, QubeProperties.All[property].TypeName);
    }
}
