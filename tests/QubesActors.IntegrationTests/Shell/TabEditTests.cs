using QubesActors.Cli.Shell;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

public sealed class TabEditTests
{
    private static TabOutcome Tab(string line, int start, string word, params string[] candidates) =>
        TabEdit.Apply(line, line.Length, new CompletionResult(start, line.Length, word, candidates));

    [Fact]
    public void One_candidate_completes_the_word_and_adds_a_space()
    {
        var outcome = Tab("start wo", 6, "wo", "work");
        Assert.Equal(("start work ", 11), (outcome.Line, outcome.Cursor));
        Assert.Empty(outcome.Listing);
    }

    [Fact]
    public void Several_candidates_complete_their_common_prefix()
    {
        var outcome = Tab("start s", 6, "s", "sys-firewall", "sys-net");
        Assert.Equal(("start sys-", 10), (outcome.Line, outcome.Cursor));
        Assert.Empty(outcome.Listing);
    }

    [Fact]
    public void When_the_prefix_adds_nothing_the_candidates_are_listed()
    {
        var outcome = Tab("start sys-", 6, "sys-", "sys-firewall", "sys-net");
        Assert.Equal(("start sys-", 10), (outcome.Line, outcome.Cursor));
        Assert.Equal(["sys-firewall", "sys-net"], outcome.Listing);
    }

    [Fact]
    public void No_candidate_changes_nothing()
    {
        var outcome = Tab("start x", 6, "x");
        Assert.Equal(("start x", 7), (outcome.Line, outcome.Cursor));
        Assert.Empty(outcome.Listing);
    }

    [Fact]
    public void A_candidate_that_needs_quotes_is_quoted()
    {
        var outcome = Tab("prefs work kernelopts 'no", 22, "no", "nopat quiet");
        Assert.Equal("prefs work kernelopts 'nopat quiet' ", outcome.Line);
        Assert.Equal(["prefs", "work", "kernelopts", "nopat quiet"], ShellTokenizer.Tokenize(outcome.Line));
    }

    [Fact]
    public void An_option_with_equals_waits_for_its_value()
    {
        var outcome = Tab("create --templ", 7, "--templ", "--template=");
        Assert.Equal("create --template=", outcome.Line);
    }

    [Fact]
    public void Completing_in_the_middle_keeps_the_rest_of_the_line()
    {
        const string line = "start wo --wait";
        var outcome = TabEdit.Apply(line, 8, new CompletionResult(6, 8, "wo", ["work"]));
        Assert.Equal(("start work --wait", 10), (outcome.Line, outcome.Cursor));
    }

    [Fact]
    public void Common_prefix()
    {
        Assert.Equal("sys-", TabEdit.CommonPrefix(["sys-net", "sys-firewall", "sys-usb"]));
        Assert.Equal("", TabEdit.CommonPrefix(["a", "b"]));
        Assert.Equal("same", TabEdit.CommonPrefix(["same", "same"]));
    }
}
