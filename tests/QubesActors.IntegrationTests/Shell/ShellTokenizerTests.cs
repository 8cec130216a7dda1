using QubesActors.Cli.Shell;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

public sealed class ShellTokenizerTests
{
    [Theory]
    [InlineData("", new string[0])]
    [InlineData("   ", new string[0])]
    [InlineData("ls", new[] { "ls" })]
    [InlineData("  start   work  ", new[] { "start", "work" })]
    [InlineData("prefs work netvm ''", new[] { "prefs", "work", "netvm", "" })]
    [InlineData("a 'b c' d", new[] { "a", "b c", "d" })]
    [InlineData("a \"b c\" d", new[] { "a", "b c", "d" })]
    [InlineData("a\\ b", new[] { "a b" })]
    [InlineData("'it''s'", new[] { "its" })]
    [InlineData("'a\\b'", new[] { "a\\b" })]
    [InlineData("\"a\\\"b\"", new[] { "a\"b" })]
    [InlineData("\"a\\nb\"", new[] { "a\\nb" })]
    [InlineData("\"$x \\$y\"", new[] { "$x $y" })]
    [InlineData("pre'mid dle'post", new[] { "premid dlepost" })]
    [InlineData("\"'\" '\"'", new[] { "'", "\"" })]
    [InlineData("a\tb", new[] { "a", "b" })]
    [InlineData("\\'x", new[] { "'x" })]
    [InlineData("--opt=\"a b\"", new[] { "--opt=a b" })]
    public void Splits_like_a_shell(string line, string[] expected) =>
        Assert.Equal(expected, ShellTokenizer.Tokenize(line));

    [Theory]
    [InlineData("echo 'open", "unterminated single quote")]
    [InlineData("echo \"open", "unterminated double quote")]
    [InlineData("echo a\\", "the line ends with a backslash")]
    public void Refuses_unfinished_lines(string line, string message) =>
        Assert.Equal(message, Assert.Throws<ShellSyntaxException>(() => ShellTokenizer.Tokenize(line)).Message);

    [Theory]
    [InlineData("")]
    [InlineData("plain")]
    [InlineData("two words")]
    [InlineData("it's")]
    [InlineData("a\"b")]
    [InlineData("back\\slash")]
    [InlineData("tab\there")]
    [InlineData("$HOME")]
    [InlineData("--opt=value")]
    public void Quote_round_trips(string word) =>
        Assert.Equal([word], ShellTokenizer.Tokenize(ShellTokenizer.Quote(word)));

    [Fact]
    public void Quote_leaves_plain_words_alone()
    {
        Assert.Equal("sys-net", ShellTokenizer.Quote("sys-net"));
        Assert.Equal("'a b'", ShellTokenizer.Quote("a b"));
    }

    [Fact]
    public void Partial_gives_the_word_under_the_cursor()
    {
        var p = ShellTokenizer.Partial("start wo", 8);
        Assert.Equal(["start"], p.Words.Select(w => w.Text));
        Assert.Equal(new ShellWord("wo", 6, 8), p.Current);
        Assert.Null(p.OpenQuote);
    }

    [Fact]
    public void Partial_after_a_space_is_an_empty_word_at_the_cursor()
    {
        var p = ShellTokenizer.Partial("start ", 6);
        Assert.Equal(["start"], p.Words.Select(w => w.Text));
        Assert.Equal(new ShellWord("", 6, 6), p.Current);
    }

    [Fact]
    public void Partial_inside_an_open_quote_does_not_throw()
    {
        var p = ShellTokenizer.Partial("prefs 'my q", 11);
        Assert.Equal("my q", p.Current.Text);
        Assert.Equal(6, p.Current.Start);
        Assert.Equal('\'', p.OpenQuote);
    }

    [Fact]
    public void Partial_ignores_what_follows_the_cursor()
    {
        var p = ShellTokenizer.Partial("start wo rest", 8);
        Assert.Equal("wo", p.Current.Text);
        Assert.Single(p.Words);
    }
}
