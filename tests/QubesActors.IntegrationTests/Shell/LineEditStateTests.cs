using QubesActors.Cli.Shell;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

public sealed class LineEditStateTests
{
    internal static ConsoleKeyInfo Char(char c) => new(c, ConsoleKey.NoName, false, false, false);
    internal static ConsoleKeyInfo Key(ConsoleKey key, bool control = false) => new('\0', key, false, false, control);
    internal static ConsoleKeyInfo Ctrl(char letter) => new((char)(letter - 'a' + 1), ConsoleKey.A + (letter - 'a'), false, false, true);

    private static KeyOutcome Type(LineEditState state, string text)
    {
        var outcome = KeyOutcome.Edited;
        foreach (var c in text)
            outcome = state.Handle(Char(c));
        return outcome;
    }

    [Fact]
    public void Typing_inserts_at_the_cursor()
    {
        var s = new LineEditState([]);
        Type(s, "strt");
        s.Handle(Key(ConsoleKey.LeftArrow));
        s.Handle(Key(ConsoleKey.LeftArrow));
        Type(s, "a");
        Assert.Equal(("start", 3), (s.Text, s.Cursor));
        Assert.Equal(KeyOutcome.Submitted, s.Handle(Key(ConsoleKey.Enter)));
    }

    [Fact]
    public void Editing_keys()
    {
        var s = new LineEditState([]);
        Type(s, "start work");
        s.Handle(Key(ConsoleKey.Backspace));
        Assert.Equal("start wor", s.Text);
        s.Handle(Ctrl('a'));
        Assert.Equal(0, s.Cursor);
        s.Handle(Key(ConsoleKey.Delete));
        Assert.Equal("tart wor", s.Text);
        s.Handle(Ctrl('e'));
        Assert.Equal(8, s.Cursor);
        s.Handle(Ctrl('w'));
        Assert.Equal("tart ", s.Text);
        s.Handle(Key(ConsoleKey.LeftArrow, control: true));
        Assert.Equal(0, s.Cursor);
        s.Handle(Ctrl('k'));
        Assert.Equal("", s.Text);
        Type(s, "ab cd");
        s.Handle(Key(ConsoleKey.LeftArrow));
        s.Handle(Ctrl('u'));
        Assert.Equal(("d", 0), (s.Text, s.Cursor));
    }

    [Fact]
    public void Ctrl_d_ends_input_only_on_an_empty_line()
    {
        var s = new LineEditState([]);
        Type(s, "ab");
        s.Handle(Key(ConsoleKey.Home));
        Assert.Equal(KeyOutcome.Edited, s.Handle(Ctrl('d')));
        Assert.Equal("b", s.Text);
        s.Handle(Ctrl('d'));
        Assert.Equal(KeyOutcome.EndOfInput, s.Handle(Ctrl('d')));
    }

    [Fact]
    public void Ctrl_c_as_a_key_or_a_signal_clears_the_line()
    {
        var s = new LineEditState([]);
        Type(s, "start wo");
        Assert.Equal(KeyOutcome.Edited, s.Handle(Ctrl('c')));
        Assert.Equal(("", 0), (s.Text, s.Cursor));
        Type(s, "again");
        s.Interrupt();
        Assert.Equal("", s.Text);
    }

    [Fact]
    public void Control_characters_are_never_inserted()
    {
        var s = new LineEditState([]);
        s.Handle(new ConsoleKeyInfo('\u001b', ConsoleKey.Escape, false, false, false));
        s.Handle(new ConsoleKeyInfo('\0', ConsoleKey.F5, false, false, false));
        Assert.Equal("", s.Text);
    }

    [Fact]
    public void Up_and_down_browse_the_history_and_come_back_to_the_draft()
    {
        var s = new LineEditState(["ls", "start work"]);
        Type(s, "dra");
        s.Handle(Key(ConsoleKey.UpArrow));
        Assert.Equal(("start work", 10), (s.Text, s.Cursor));
        s.Handle(Key(ConsoleKey.UpArrow));
        Assert.Equal("ls", s.Text);
        s.Handle(Key(ConsoleKey.UpArrow));
        Assert.Equal("ls", s.Text);
        s.Handle(Key(ConsoleKey.DownArrow));
        s.Handle(Ctrl('n'));
        Assert.Equal("dra", s.Text);
        s.Handle(Key(ConsoleKey.DownArrow));
        Assert.Equal("dra", s.Text);
    }

    [Fact]
    public void History_sees_lines_added_during_the_session_after_a_reset()
    {
        var lines = new List<string> { "ls" };
        var s = new LineEditState(lines);
        lines.Add("events");
        s.Reset();
        s.Handle(Ctrl('p'));
        Assert.Equal("events", s.Text);
    }

    [Fact]
    public void Tab_applies_the_completion_and_exposes_a_listing()
    {
        var s = new LineEditState([], (line, cursor) => new TabOutcome(line + "x", cursor + 1, line.Length > 1 ? ["a", "b"] : []));
        Type(s, "s");
        s.Handle(Key(ConsoleKey.Tab));
        Assert.Equal(("sx", 2), (s.Text, s.Cursor));
        Assert.Empty(s.Listing);
        s.Handle(Key(ConsoleKey.Tab));
        Assert.Equal(["a", "b"], s.Listing);
        Type(s, "y");
        Assert.Empty(s.Listing);
    }

    [Theory]
    [InlineData("short", 2, 40, "short", 7)]
    [InlineData("0123456789abcdefghij", 20, 16, "abcdefghij", 15)]
    [InlineData("0123456789abcdefghij", 0, 16, "0123456789", 5)]
    public void Long_lines_scroll_so_the_cursor_stays_visible(string text, int cursor, int width, string visible, int column)
    {
        var (v, c) = LineEditState.View("qvm> ", text, cursor, width);
        Assert.Equal((visible, column), (v, c));
        Assert.True(c < width);
    }
}
