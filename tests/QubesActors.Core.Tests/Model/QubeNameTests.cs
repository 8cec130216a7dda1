using System.Text.RegularExpressions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Core.Rules;
using Xunit;

namespace QubesActors.Core.Tests.Model;

/// <summary>Name rules of §1.1.</summary>
public class QubeNameTests
{
    private const string StartMessage = "VM name cannot start with hyphen, underscore, dot or numbers";
    private const string IllegalMessage = "VM name contains illegal characters";
    private const string LengthMessage = "VM name must be shorter than 32 characters";

    [Theory]
    [InlineData("a")]
    [InlineData("work")]
    [InlineData("sys-net")]
    [InlineData("Personal_2.0-x")]
    [InlineData("Z9")]
    [InlineData("dm")]
    [InlineData("a-dmx")]
    [InlineData("a-DM")]
    [InlineData("Domain-1")]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDE")] // 31 characters
    public void Names_following_the_rules_are_accepted_unchanged(string name)
    {
        Assert.True(QubeName.IsValid(name));
        Assert.Null(QubeName.Problem(name));
        Assert.Equal(name, QubeName.Validate(name));
    }

    [Fact]
    public void A_name_of_32_characters_is_too_long()
    {
        var name = new string('a', 32);
        var e = Assert.Throws<QubesValueError>(() => QubeName.Validate(name));
        Assert.Equal(LengthMessage, e.Message);
    }

    [Fact]
    public void Length_is_checked_before_the_first_character()
    {
        Assert.Equal(LengthMessage, QubeName.Problem("1" + new string('a', 40)));
    }

    [Fact]
    public void An_empty_name_is_refused()
    {
        var e = Assert.Throws<QubesValueError>(() => QubeName.Validate(""));
        Assert.Equal("VM name cannot be empty", e.Message);
    }

    [Theory]
    [InlineData("-work")]
    [InlineData("_work")]
    [InlineData(".work")]
    [InlineData("0work")]
    [InlineData("9")]
    [InlineData("-")]
    public void Names_starting_with_hyphen_underscore_dot_or_digit_are_refused(string name)
    {
        var e = Assert.Throws<QubesValueError>(() => QubeName.Validate(name));
        Assert.Equal(StartMessage, e.Message);
    }

    [Theory]
    [InlineData("my work")]
    [InlineData("a/b")]
    [InlineData("a:b")]
    [InlineData("a+b")]
    [InlineData("caf\u00e9")]
    [InlineData("\u00e9t\u00e9")]
    [InlineData("a\n")]
    [InlineData("a\0")]
    [InlineData(" a")]
    [InlineData("!work")]
    [InlineData("a@b")]
    [InlineData("\u0430bc")] // Cyrillic a
    public void Names_with_characters_outside_letters_digits_underscore_dot_hyphen_are_refused(string name)
    {
        var e = Assert.Throws<QubesValueError>(() => QubeName.Validate(name));
        Assert.Equal(IllegalMessage, e.Message);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("default")]
    [InlineData("Domain-0")]
    public void Reserved_names_are_refused(string name)
    {
        var e = Assert.Throws<QubesValueError>(() => QubeName.Validate(name));
        Assert.Equal("VM name cannot be 'none', 'default' nor 'Domain-0'", e.Message);
    }

    [Theory]
    [InlineData("sys-net-dm")]
    [InlineData("a-dm")]
    public void Names_ending_in_dash_dm_are_refused(string name)
    {
        var e = Assert.Throws<QubesValueError>(() => QubeName.Validate(name));
        Assert.Equal("VM name cannot end with -dm", e.Message);
    }

    [Fact]
    public void Dom0_is_a_valid_name_but_taken_by_the_AdminVM()
    {
        Assert.True(QubeName.IsValid("dom0"));
        var e = Assert.Throws<QubesVMAlreadyExistsError>(() => new TestWorld().Create(QubeClass.TemplateVM, "dom0"));
        Assert.Equal("Qube already exists: dom0", e.Message);
    }

    [Fact]
    public void Creating_a_qube_with_a_taken_name_is_refused()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesVMAlreadyExistsError>(() => w.Create(QubeClass.AppVM, "work"));
        Assert.Equal("Qube already exists: work", e.Message);
    }

    [Fact]
    public void Creating_a_qube_with_an_invalid_name_is_refused_with_the_name_rule()
    {
        var w = TestWorld.Installed();
        var e = Assert.Throws<QubesValueError>(() => w.Create(QubeClass.AppVM, "1work"));
        Assert.Equal(StartMessage, e.Message);
    }

    [Fact]
    public void Another_AdminVM_cannot_be_created()
    {
        Assert.Throws<QubesValueError>(() => new TestWorld().Create(QubeClass.AdminVM, "dom1"));
    }

    [Theory]
    [InlineData("name", "renamed")]
    [InlineData("qid", "77")]
    [InlineData("uuid", "6e9c1cd0-6b24-4e8e-9ad3-9d0b1bb9b1b1")]
    public void Name_qid_and_uuid_are_write_once(string property, string value)
    {
        var w = TestWorld.Installed();
        var before = w["work"];
        var e = Assert.Throws<QubesValueError>(() => w.Set("work", property, value));
        Assert.Equal($"Property '{property}' of work is read-only", e.Message);
        Assert.Throws<QubesValueError>(() => w.Reset("work", property));
        Assert.Equal(before, w["work"]);
    }
}

/// <summary>Properties of the name rules over generated and arbitrary strings.</summary>
[Properties(MaxTest = 1000)]
public class QubeNamePropertyTests
{
    private static readonly Regex Rule = new(@"\A[a-zA-Z][a-zA-Z0-9_.-]*\z", RegexOptions.CultureInvariant);

    private const string Letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    private const string Tail = Letters + "0123456789_.-";

    private static Gen<string> ValidNames =>
        from first in Gen.Elements(Letters.ToCharArray())
        from length in Gen.Choose(0, 30)
        from rest in Gen.Elements(Tail.ToCharArray()).ArrayOf(length)
        let name = first + new string(rest)
        where name is not ("none" or "default" or "Domain-0") && !name.EndsWith("-dm", StringComparison.Ordinal)
        select name;

    // Mostly near-misses: name characters plus a few troublemakers, sometimes too long.
    private static Gen<string> NearNames =>
        from length in Gen.Frequency((5, Gen.Choose(0, 34)), (1, Gen.Choose(30, 40)))
        from chars in Gen.Frequency(
                (20, Gen.Elements(Tail.ToCharArray())),
                (1, Gen.Elements(' ', '\n', '\0', '/', '\u00e9', '\u0130', '\u212a', ':', '@', '+', '\t')))
            .ArrayOf(length)
        from suffix in Gen.Elements("", "", "", "-dm", "\n")
        select new string(chars) + suffix;

    [Property]
    public Property Every_accepted_name_matches_the_rule_is_short_enough_and_not_reserved() =>
        Prop.ForAll(Gen.OneOf(NearNames, ArbMap.Default.GeneratorFor<string>().Where(s => s is not null)).ToArbitrary(), name =>
            !QubeName.IsValid(name)
            || Rule.IsMatch(name) && name.Length <= QubeName.MaxLength
                                 && name is not ("none" or "default" or "Domain-0")
                                 && !name.EndsWith("-dm", StringComparison.Ordinal));

    [Property]
    public Property Every_name_matching_the_rule_and_not_reserved_is_accepted() =>
        Prop.ForAll(ValidNames.ToArbitrary(), name => QubeName.IsValid(name) && QubeName.Validate(name) == name);

    [Property]
    public Property Generated_valid_names_can_be_created_as_qubes() =>
        Prop.ForAll(ValidNames.Where(n => n != "dom0").ToArbitrary(), name =>
        {
            var e = CollectionRules.CreateQube(CollectionState.Empty, QubeClass.StandaloneVM, name, "red", null,
                new Dictionary<string, string>(), TestWorld.Dom0, TestWorld.T0, Guid.NewGuid());
            return e.Name == name && e.Qid == 1;
        });

    [Property]
    public Property Arbitrary_strings_never_throw_anything_but_QubesValueError() =>
        Prop.ForAll(Gen.OneOf(NearNames, ArbMap.Default.GeneratorFor<string>().Where(s => s is not null)).ToArbitrary(), name =>
        {
            try
            {
                return QubeName.Validate(name) == name && QubeName.IsValid(name);
            }
            catch (Exception e)
            {
                return e.GetType() == typeof(QubesValueError) && !QubeName.IsValid(name) && QubeName.Problem(name) == e.Message;
            }
        });
}
