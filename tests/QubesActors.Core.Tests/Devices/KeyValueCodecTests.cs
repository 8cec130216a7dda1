using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using Xunit;

namespace QubesActors.Core.Tests.Devices;

public class KeyValueCodecTests
{
    private static KeyValuePair<string, string> P(string k, string v) => new(k, v);

    [Fact]
    public void Pairs_are_space_separated_with_single_quoted_values()
    {
        Assert.Equal("mode='required' frontend_domain='work'",
            KeyValueCodec.Serialize([P("mode", "required"), P("frontend_domain", "work")]));
    }

    [Fact]
    public void Quote_and_backslash_are_backslash_escaped()
    {
        Assert.Equal(@"name='it\'s a \\ thing'", KeyValueCodec.FormatPair("name", @"it's a \ thing"));
    }

    [Fact]
    public void Parse_reads_escaped_quotes_and_backslashes()
    {
        var pairs = KeyValueCodec.Parse(@"a='it\'s' b='x\\' c=''").ToArray();
        Assert.Equal([P("a", "it's"), P("b", @"x\"), P("c", "")], pairs);
    }

    [Fact]
    public void Parse_reads_a_lone_backslash_literally_as_upstream_writes_it()
    {
        Assert.Equal([P("path", @"C:\dir")], KeyValueCodec.Parse(@"path='C:\dir'").ToArray());
    }

    [Fact]
    public void Parse_accepts_extra_spaces_and_empty_text()
    {
        Assert.Empty(KeyValueCodec.Parse(""));
        Assert.Equal([P("a", "1"), P("b", "2")], KeyValueCodec.Parse("  a='1'   b='2' ").ToArray());
    }

    [Fact]
    public void Value_containing_separator_lookalikes_survives()
    {
        var value = "x' y='z";
        var text = KeyValueCodec.FormatPair("k", value);
        Assert.Equal([P("k", value)], KeyValueCodec.Parse(text).ToArray());
    }

    [Theory]
    [InlineData("a=1")]
    [InlineData("a='1")]
    [InlineData("a='1'b='2'")]
    [InlineData("='1'")]
    [InlineData("a b='1'")]
    [InlineData("a='1' a='2'")]
    [InlineData("a='\u00e9'")]
    [InlineData("a='line\nbreak'")]
    public void Malformed_or_unsafe_text_is_a_protocol_error(string text)
    {
        Assert.Throws<ProtocolError>(() => KeyValueCodec.Parse(text));
    }

    [Fact]
    public void Keys_starting_with_underscore_are_options()
    {
        var (properties, options) = KeyValueCodec.ParseSplit("mode='required' _no-strict-reset='yes'");
        Assert.Equal("required", properties["mode"]);
        Assert.False(properties.ContainsKey("_no-strict-reset"));
        Assert.Equal("yes", options["no-strict-reset"]);
        Assert.True(options.Flag("no-strict-reset"));
    }

    [Theory]
    [InlineData("yes", true)]
    [InlineData("True", true)]
    [InlineData("1", true)]
    [InlineData("on", true)]
    [InlineData("no", false)]
    [InlineData("FALSE", false)]
    [InlineData("0", false)]
    [InlineData("off", false)]
    public void Booleans_read_as_upstream_qbool(string text, bool expected)
    {
        Assert.Equal(expected, KeyValueCodec.ParseBool(text));
    }

    [Fact]
    public void Booleans_are_written_yes_and_no_and_anything_else_is_a_value_error()
    {
        Assert.Equal("yes", KeyValueCodec.FormatBool(true));
        Assert.Equal("no", KeyValueCodec.FormatBool(false));
        Assert.Throws<QubesValueError>(() => KeyValueCodec.ParseBool("maybe"));
    }

    [Fact]
    public void Serialize_refuses_what_it_could_not_read_back()
    {
        Assert.Throws<ProtocolError>(() => KeyValueCodec.FormatPair("a b", "x"));
        Assert.Throws<ProtocolError>(() => KeyValueCodec.FormatPair("a", "tab\there"));
    }

    [Property(Arbitrary = [typeof(KeyValueArbitraries)])]
    public bool Any_pairs_round_trip(KeyValuePair<string, string>[] pairs)
    {
        // Keys must be distinct, as Parse refuses repeats.
        var distinct = pairs.DistinctBy(p => p.Key).ToArray();
        return KeyValueCodec.Parse(KeyValueCodec.Serialize(distinct)).SequenceEqual(distinct);
    }

    public static class KeyValueArbitraries
    {
        public static Arbitrary<KeyValuePair<string, string>[]> Pairs() =>
            Gen.ArrayOf(from k in DeviceGenerators.KeyGen from v in DeviceGenerators.ValueGen select new KeyValuePair<string, string>(k, v))
                .ToArbitrary();
    }
}
