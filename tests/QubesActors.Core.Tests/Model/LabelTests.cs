using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using Xunit;

namespace QubesActors.Core.Tests.Model;

/// <summary>Labels (§1.1): the eight standard ones, lookup by name or index, custom labels.</summary>
public class LabelTests
{
    public static TheoryData<int, string, string> StandardLabels => new()
    {
        { 1, "red", "0xcc0000" },
        { 2, "orange", "0xf57900" },
        { 3, "yellow", "0xedd400" },
        { 4, "green", "0x73d216" },
        { 5, "gray", "0x555555" },
        { 6, "blue", "0x3465a4" },
        { 7, "purple", "0x75507b" },
        { 8, "black", "0x000000" },
    };

    [Fact]
    public void There_are_exactly_eight_standard_labels_indexed_one_to_eight()
    {
        Assert.Equal(Enumerable.Range(1, 8), Label.Standard.Select(l => l.Index));
        Assert.Equal(Label.StandardSet, CollectionState.Empty.Labels);
    }

    [Theory]
    [MemberData(nameof(StandardLabels))]
    public void A_standard_label_resolves_by_name_and_by_index(int index, string name, string color)
    {
        var expected = new Label(index, name, color);
        Assert.Equal(expected, Label.Resolve(Label.StandardSet, name));
        Assert.Equal(expected, Label.Resolve(Label.StandardSet, index.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData("pink")]
    [InlineData("Red")]
    [InlineData("0")]
    [InlineData("9")]
    [InlineData("-1")]
    [InlineData("")]
    public void An_unknown_label_is_QubesLabelNotFoundError(string label)
    {
        var e = Assert.Throws<QubesLabelNotFoundError>(() => Label.Resolve(Label.StandardSet, label));
        Assert.Equal($"Label does not exist: {label}", e.Message);
        Assert.Equal("QubesLabelNotFoundError", e.QubesClassName);
    }

    [Fact]
    public void A_qube_can_be_created_with_its_label_given_by_index_and_stores_the_name()
    {
        var w = new TestWorld().Create(QubeClass.StandaloneVM, "vault", "8");
        Assert.Equal("black", w["vault"].Label);
        Assert.Equal("black", w.Effective("vault", "label"));
    }

    [Fact]
    public void Creating_a_qube_with_an_unknown_label_is_refused()
    {
        var e = Assert.Throws<QubesLabelNotFoundError>(() => new TestWorld().Create(QubeClass.StandaloneVM, "vault", "pink"));
        Assert.Equal("Label does not exist: pink", e.Message);
    }

    [Fact]
    public void Setting_the_label_by_index_or_name_changes_it_and_it_is_never_default()
    {
        var w = TestWorld.Installed().Set("work", "label", "3");
        Assert.Equal("yellow", w["work"].Label);
        Assert.False(w.IsDefault("work", "label"));
        w.Set("work", "label", "purple");
        Assert.Equal("purple", w["work"].Label);
        Assert.Throws<QubesLabelNotFoundError>(() => w.Set("work", "label", "10"));
        Assert.Throws<QubesValueError>(() => w.Reset("work", "label"));
    }

    private static CollectionState WithLabel(CollectionState c, string name, string color = "0x123456") =>
        c.Apply(CollectionRules.CreateLabel(c, name, color, TestWorld.Dom0, TestWorld.T0));

    [Fact]
    public void Custom_labels_get_indexes_above_eight_in_order()
    {
        var c = WithLabel(CollectionState.Empty, "pink", "0xFFC0CB");
        c = WithLabel(c, "teal");
        Assert.Equal(new Label(9, "pink", "0xffc0cb"), Label.Resolve(c.Labels, "9"));
        Assert.Equal(new Label(10, "teal", "0x123456"), Label.Resolve(c.Labels, "teal"));
    }

    [Fact]
    public void A_custom_label_can_be_used_by_name_or_index()
    {
        var w = new TestWorld(WithLabel(CollectionState.Empty, "pink"));
        w.Create(QubeClass.StandaloneVM, "a", "pink").Create(QubeClass.StandaloneVM, "b", "9");
        Assert.Equal("pink", w["a"].Label);
        Assert.Equal("pink", w["b"].Label);
    }

    [Fact]
    public void Creating_a_label_with_an_existing_name_is_refused()
    {
        Assert.Throws<QubesValueError>(() => WithLabel(CollectionState.Empty, "red"));
        var c = WithLabel(CollectionState.Empty, "pink");
        Assert.Throws<QubesValueError>(() => WithLabel(c, "pink"));
    }

    [Theory]
    [InlineData("123456")]
    [InlineData("0x12345")]
    [InlineData("0x1234567")]
    [InlineData("0xgggggg")]
    [InlineData("red")]
    public void Creating_a_label_with_a_malformed_color_is_a_protocol_error(string color)
    {
        Assert.Throws<ProtocolError>(() => WithLabel(CollectionState.Empty, "pink", color));
    }

    [Theory]
    [InlineData("")]
    [InlineData("pi nk")]
    [InlineData("pink!")]
    public void Creating_a_label_with_a_malformed_name_is_a_protocol_error(string name)
    {
        Assert.Throws<ProtocolError>(() => WithLabel(CollectionState.Empty, name));
    }

    [Fact]
    public void An_unused_custom_label_can_be_removed()
    {
        var c = WithLabel(CollectionState.Empty, "pink");
        var e = CollectionRules.RemoveLabel(c, "pink", TestWorld.Dom0, TestWorld.T0);
        Assert.Equal(new LabelRemoved("pink") { Time = TestWorld.T0, Cause = TestWorld.Dom0 }, e);
        c = c.Apply(e);
        Assert.Equal(Label.StandardSet, c.Labels);
        Assert.Throws<QubesLabelNotFoundError>(() => Label.Resolve(c.Labels, "pink"));
    }

    [Fact]
    public void A_custom_label_in_use_by_a_qube_cannot_be_removed()
    {
        var w = new TestWorld(WithLabel(CollectionState.Empty, "pink")).Create(QubeClass.StandaloneVM, "a", "pink");
        var e = Assert.Throws<QubesLabelInUseError>(() => CollectionRules.RemoveLabel(w.State, "pink", TestWorld.Dom0, TestWorld.T0));
        Assert.Equal("Label is in use: pink", e.Message);
        Assert.Equal("QubesLabelInUseError", e.QubesClassName);
    }

    [Fact]
    public void A_custom_label_becomes_removable_once_no_qube_uses_it()
    {
        var w = new TestWorld(WithLabel(CollectionState.Empty, "pink")).Create(QubeClass.StandaloneVM, "a", "pink").Set("a", "label", "red");
        CollectionRules.RemoveLabel(w.State, "pink", TestWorld.Dom0, TestWorld.T0);
    }

    [Theory]
    [InlineData("red")]
    [InlineData("black")]
    public void Standard_labels_cannot_be_removed(string name)
    {
        Assert.Throws<PermissionDenied>(() => CollectionRules.RemoveLabel(CollectionState.Empty, name, TestWorld.Dom0, TestWorld.T0));
    }

    [Fact]
    public void Removing_an_unknown_label_is_QubesLabelNotFoundError()
    {
        var e = Assert.Throws<QubesLabelNotFoundError>(() => CollectionRules.RemoveLabel(CollectionState.Empty, "pink", TestWorld.Dom0, TestWorld.T0));
        Assert.Equal("Label does not exist: pink", e.Message);
    }

    [Fact]
    public void Dom0_is_black_with_icon_adminvm_black()
    {
        var c = CollectionState.Empty;
        Assert.Equal("black", c.Get("dom0").Label);
        Assert.Equal("adminvm-black", c.Effective(c.Get("dom0"), "icon"));
    }

    [Fact]
    public void Icons_follow_class_label_and_role()
    {
        var w = TestWorld.Installed().Create(QubeClass.StandaloneVM, "sa", "orange");
        Assert.Equal("templatevm-black", w.Effective("fedora", "icon"));
        Assert.Equal("appvm-blue", w.Effective("work", "icon"));
        Assert.Equal("templatevm-red", w.Effective("default-dvm", "icon"));
        Assert.Equal("standalonevm-orange", w.Effective("sa", "icon"));
        w.Feature("work", "servicevm", "1");
        Assert.Equal("servicevm-blue", w.Effective("work", "icon"));
        Assert.Equal("dispvm-red", w.Effective(w.CreateDisposable("default-dvm"), "icon"));
    }
}
