using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using Xunit;

namespace QubesActors.Core.Tests.Model;

/// <summary>Parsing and validation of property values (§1.2, §7).</summary>
public class PropertyValueTests
{
    [Theory]
    [InlineData("1", true)]
    [InlineData("yes", true)]
    [InlineData("YES", true)]
    [InlineData("true", true)]
    [InlineData("True", true)]
    [InlineData("tRuE", true)]
    [InlineData("on", true)]
    [InlineData("On", true)]
    [InlineData("0", false)]
    [InlineData("no", false)]
    [InlineData("No", false)]
    [InlineData("false", false)]
    [InlineData("FALSE", false)]
    [InlineData("off", false)]
    [InlineData("OFF", false)]
    public void Boolean_literals_are_case_insensitive(string literal, bool expected)
    {
        Assert.Equal(expected, PropertyValues.ParseBool(literal));
        var w = TestWorld.Installed().Set("work", "autostart", literal);
        Assert.Equal(PropertyValues.Bool(expected), w["work"].Properties["autostart"]);
        Assert.Equal(expected, w.State.EffectiveBool(w["work"], "autostart"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("2")]
    [InlineData("maybe")]
    [InlineData("y")]
    [InlineData("t")]
    [InlineData(" true")]
    [InlineData("true ")]
    [InlineData("enabled")]
    [InlineData("-1")]
    public void Anything_else_is_an_invalid_boolean_literal(string literal)
    {
        var e = Assert.Throws<QubesValueError>(() => PropertyValues.ParseBool(literal));
        Assert.Equal($"Invalid literal for boolean property: {literal}", e.Message);
        var w = TestWorld.Installed();
        var e2 = Assert.Throws<QubesValueError>(() => w.Set("work", "debug", literal));
        Assert.Equal($"Invalid literal for boolean property: {literal}", e2.Message);
        Assert.True(w.IsDefault("work", "debug"));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData("1.5")]
    [InlineData("0x10")]
    [InlineData("99999999999")]
    [InlineData("1 2")]
    public void A_non_integer_for_an_int_property_is_an_invalid_value(string value)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Set("work", "memory", value));
        Assert.Equal($"Invalid value '{value}' for property 'memory' of work", e.Message);
        Assert.Equal("QubesPropertyValueError", e.QubesClassName);
    }

    [Theory]
    [InlineData("memory", "0")]
    [InlineData("memory", "-5")]
    [InlineData("vcpus", "0")]
    [InlineData("qrexec_timeout", "0")]
    [InlineData("shutdown_timeout", "-1")]
    [InlineData("maxmem", "-1")]
    [InlineData("restart_intensity", "-1")]
    public void Int_properties_must_be_positive_and_maxmem_non_negative(string property, string value)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Set("work", property, value));
        Assert.Equal($"Invalid value '{value}' for property '{property}' of work", e.Message);
    }

    [Fact]
    public void Restart_intensity_zero_means_the_first_unexpected_stop_marks_the_qube_failed()
    {
        var w = TestWorld.Installed().Set("work", "restart_intensity", "0").Set("work", "restart", "permanent");
        Assert.Equal("0", w.Effective("work", "restart_intensity"));
        var now = DateTimeOffset.UnixEpoch.AddDays(1);
        var crashed = w["work"] with { RecentCrashes = [now] };
        var settings = RestartSettings.ServiceDefault with { Intensity = 0 };
        Assert.IsType<RestartDecision.GiveUp>(RestartPolicy.Decide(crashed, settings, StopKind.Crashed, now, 0.5));
    }

    [Fact]
    public void Maxmem_zero_turns_balancing_off_and_int_values_are_normalised()
    {
        var w = TestWorld.Installed().Set("work", "maxmem", "0").Set("work", "memory", "+0512");
        Assert.Equal("0", w.Effective("work", "maxmem"));
        Assert.Equal("512", w["work"].Properties["memory"]);
    }

    [Theory]
    [InlineData("klass")]
    [InlineData("icon")]
    [InlineData("updateable")]
    [InlineData("xid")]
    [InlineData("ip")]
    [InlineData("visible_ip")]
    [InlineData("gateway")]
    [InlineData("dns")]
    [InlineData("start_time")]
    public void Read_only_properties_refuse_set_and_reset(string property)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Set("work", property, "x"));
        Assert.Equal($"Property '{property}' of work is read-only", e.Message);
        Assert.Throws<QubesValueError>(() => w.Reset("work", property));
    }

    [Theory]
    [InlineData("work", "nope")]
    [InlineData("work", "dispid")]
    [InlineData("work", "auto_cleanup")]
    [InlineData("fedora", "template")]
    [InlineData("fedora", "template_for_dispvms")]
    [InlineData("dom0", "netvm")]
    [InlineData("dom0", "memory")]
    public void Properties_a_class_does_not_have_are_QubesNoSuchPropertyError(string qube, string property)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesNoSuchPropertyError>(() => w.Set(qube, property, "1"));
        Assert.Equal($"Invalid property '{property}' of {qube}", e.Message);
        Assert.Throws<QubesNoSuchPropertyError>(() => w.Reset(qube, property));
    }

    [Fact]
    public void Setting_a_property_of_an_unknown_qube_is_QubesVMNotFoundError()
    {
        var e = Assert.Throws<QubesVMNotFoundError>(() => TestWorld.Installed().Set("ghost", "memory", "1"));
        Assert.Equal("No such domain: 'ghost'", e.Message);
    }

    [Theory]
    [InlineData("netvm")]
    [InlineData("default_dispvm")]
    [InlineData("management_dispvm")]
    [InlineData("guivm")]
    [InlineData("audiovm")]
    [InlineData("template")]
    public void A_vm_property_cannot_point_to_a_non_existing_qube(string property)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Set("work", property, "ghost"));
        Assert.Equal($"Can't set {property} to non-existing qube ghost", e.Message);
    }

    [Theory]
    [InlineData("virt_mode", "xen")]
    [InlineData("virt_mode", "")]
    [InlineData("restart", "sometimes")]
    [InlineData("kernel", "6.1\n")]
    [InlineData("default_user", "us\u00e9r")]
    public void Malformed_string_values_are_refused(string property, string value)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Set("work", property, value));
        Assert.Equal($"Invalid value '{value}' for property '{property}' of work", e.Message);
    }

    [Fact]
    public void Kernelopts_may_have_at_most_512_characters()
    {
        var w = TestWorld.Installed().Set("work", "kernelopts", new string('a', 512));
        Assert.Equal(512, w.Effective("work", "kernelopts")!.Length);
        Assert.Throws<QubesPropertyValueError>(() => w.Set("work", "kernelopts", new string('a', 513)));
    }

    [Theory]
    [InlineData("HVM", "hvm")]
    [InlineData("pv", "pv")]
    [InlineData("PvH", "pvh")]
    public void Virt_mode_is_stored_in_lower_case(string value, string stored)
    {
        var w = TestWorld.Installed().Set("work", "virt_mode", value);
        Assert.Equal(stored, w.Effective("work", "virt_mode"));
    }

    [Fact]
    public void SetProperty_returns_the_normalised_value_with_time_and_cause()
    {
        var w = TestWorld.Installed();
        var e = CollectionRules.SetProperty(w.State, "work", "autostart", "on", TestWorld.Dom0, TestWorld.T0);
        Assert.Equal(new QubePropertySet("autostart", "True") { Time = TestWorld.T0, Cause = TestWorld.Dom0 }, e);
        var r = CollectionRules.ResetProperty(w.State, "work", "autostart", TestWorld.Dom0, TestWorld.T0);
        Assert.Equal(new QubePropertyReset("autostart") { Time = TestWorld.T0, Cause = TestWorld.Dom0 }, r);
    }

    [Fact]
    public void Properties_given_at_creation_are_validated_like_later_sets()
    {
        var w = TestWorld.Installed();
        Assert.Throws<QubesValueError>(() => w.Create(QubeClass.AppVM, "x", "red", null, ("debug", "maybe")));
        Assert.Throws<QubesPropertyValueError>(() => w.Create(QubeClass.AppVM, "x", "red", null, ("memory", "-1")));
        Assert.Throws<QubesNoSuchPropertyError>(() => w.Create(QubeClass.AppVM, "x", "red", null, ("nope", "1")));
        Assert.Throws<QubesValueError>(() => w.Create(QubeClass.AppVM, "x", "red", null, ("qid", "50")));
        Assert.Throws<QubesValueError>(() => w.Create(QubeClass.AppVM, "x", "red", null, ("netvm", "work")));
        Assert.Null(w.State.Find("x"));
        w.Create(QubeClass.AppVM, "x", "red", null, ("memory", "600"), ("debug", "yes"));
        Assert.Equal("600", w.Effective("x", "memory"));
        Assert.Equal("True", w.Effective("x", "debug"));
    }
}

/// <summary>Global properties (§1.3).</summary>
public class GlobalPropertyTests
{
    [Theory]
    [InlineData("default_netvm", null)]
    [InlineData("default_template", null)]
    [InlineData("default_dispvm", null)]
    [InlineData("management_dispvm", null)]
    [InlineData("updatevm", null)]
    [InlineData("clockvm", null)]
    [InlineData("default_guivm", "dom0")]
    [InlineData("default_audiovm", "dom0")]
    [InlineData("default_qrexec_timeout", "60")]
    [InlineData("default_shutdown_timeout", "60")]
    [InlineData("stats_interval", "3")]
    [InlineData("check_updates_vm", "True")]
    [InlineData("default_kernel", "")]
    public void Globals_start_at_their_documented_defaults(string property, string? expected)
    {
        Assert.Equal(expected, CollectionState.Empty.GlobalEffective(property));
        Assert.True(CollectionState.Empty.GlobalIsDefault(property));
    }

    [Fact]
    public void Every_VM_valued_global_is_a_vm_property()
    {
        Assert.All(GlobalProperties.VmValued, p => Assert.Equal(PropertyType.Vm, GlobalProperties.All[p].Type));
        Assert.Equal(GlobalProperties.All.Values.Where(p => p.Type == PropertyType.Vm).Select(p => p.Name).Order(StringComparer.Ordinal),
            GlobalProperties.VmValued.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Set_and_reset_of_a_global()
    {
        var w = new TestWorld().Global("stats_interval", "10").Global("check_updates_vm", "off");
        Assert.Equal("10", w.State.GlobalEffective("stats_interval"));
        Assert.Equal("False", w.State.GlobalEffective("check_updates_vm"));
        Assert.False(w.State.GlobalIsDefault("stats_interval"));
        w.ResetGlobal("stats_interval");
        Assert.Equal("3", w.State.GlobalEffective("stats_interval"));
        Assert.True(w.State.GlobalIsDefault("stats_interval"));
    }

    [Fact]
    public void A_global_vm_property_set_to_empty_is_none_and_not_default()
    {
        var w = new TestWorld().Global("default_guivm", "");
        Assert.Null(w.State.GlobalEffective("default_guivm"));
        Assert.False(w.State.GlobalIsDefault("default_guivm"));
    }

    [Theory]
    [InlineData("maxmem")]
    [InlineData("no_cpus")]
    public void Host_values_are_read_only(string property)
    {
        var e = Assert.Throws<QubesValueError>(() => new TestWorld().Global(property, "1"));
        Assert.Equal($"Property '{property}' of dom0 is read-only", e.Message);
        Assert.Throws<QubesValueError>(() => new TestWorld().ResetGlobal(property));
    }

    [Fact]
    public void An_unknown_global_is_QubesNoSuchPropertyError()
    {
        var e = Assert.Throws<QubesNoSuchPropertyError>(() => new TestWorld().Global("nope", "1"));
        Assert.Equal("Invalid property 'nope' of dom0", e.Message);
        Assert.Throws<QubesNoSuchPropertyError>(() => new TestWorld().ResetGlobal("nope"));
    }

    [Theory]
    [InlineData("default_qrexec_timeout", "x")]
    [InlineData("default_qrexec_timeout", "0")]
    [InlineData("stats_interval", "-3")]
    public void Global_ints_must_be_positive_integers(string property, string value)
    {
        var e = Assert.Throws<QubesPropertyValueError>(() => new TestWorld().Global(property, value));
        Assert.Equal($"Invalid value '{value}' for property '{property}' of dom0", e.Message);
    }

    [Fact]
    public void A_global_bool_refuses_invalid_literals()
    {
        var e = Assert.Throws<QubesValueError>(() => new TestWorld().Global("check_updates_vm", "maybe"));
        Assert.Equal("Invalid literal for boolean property: maybe", e.Message);
    }

    [Fact]
    public void A_global_vm_property_cannot_point_to_a_non_existing_qube()
    {
        var e = Assert.Throws<QubesPropertyValueError>(() => new TestWorld().Global("updatevm", "ghost"));
        Assert.Equal("Can't set updatevm to non-existing qube ghost", e.Message);
    }

    [Fact]
    public void Default_template_must_be_a_TemplateVM()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Global("default_template", "work"));
        Assert.Equal("wrong VM class: domains['work'] is of type AppVM and not TemplateVM", e.Message);
        w.Global("default_template", "debian");
        w.Create(QubeClass.AppVM, "new");
        Assert.Equal("debian", w.Effective("new", "template"));
    }

    [Theory]
    [InlineData("default_dispvm")]
    [InlineData("management_dispvm")]
    public void Global_disposable_templates_must_have_template_for_dispvms(string property)
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesPropertyValueError>(() => w.Global(property, "work"));
        Assert.Equal($"Invalid value 'work' for property '{property}' of dom0: template_for_dispvms=False", e.Message);
        Assert.Throws<QubesPropertyValueError>(() => w.Global(property, "fedora"));
        w.Global(property, "default-dvm");
        Assert.Equal("default-dvm", w.State.GlobalEffective(property));
    }

    [Fact]
    public void Updatevm_and_clockvm_accept_any_qube_or_none()
    {
        var w = TestWorld.Installed().Global("updatevm", "sys-firewall").Global("clockvm", "sys-net");
        Assert.Equal("sys-firewall", w.State.GlobalEffective("updatevm"));
        Assert.Equal("sys-net", w.State.GlobalEffective("clockvm"));
        w.Global("clockvm", "none");
        Assert.Null(w.State.GlobalEffective("clockvm"));
    }
}

[Properties(MaxTest = 300)]
public class BoolLiteralPropertyTests
{
    private static readonly string[] Literals = ["1", "yes", "true", "on", "0", "no", "false", "off"];

    [Property]
    public Property ParseBool_accepts_exactly_the_eight_literals_in_any_case_and_throws_only_QubesValueError() =>
        Prop.ForAll(
            Gen.OneOf(
                Gen.Elements(Literals).SelectMany(l => Gen.Elements(true, false).ArrayOf(l.Length)
                    .Select(up => new string(l.Select((ch, i) => up[i] ? char.ToUpperInvariant(ch) : ch).ToArray()))),
                ArbMap.Default.GeneratorFor<string>().Where(s => s is not null)).ToArbitrary(),
            s =>
            {
                var known = Literals.Contains(s.ToLowerInvariant());
                try
                {
                    var value = PropertyValues.ParseBool(s);
                    return known && value == s.ToLowerInvariant() is "1" or "yes" or "true" or "on";
                }
                catch (QubesValueError e) when (e.GetType() == typeof(QubesValueError))
                {
                    return !known;
                }
            });
}
