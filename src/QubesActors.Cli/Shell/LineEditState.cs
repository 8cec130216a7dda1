using System.Text;

namespace QubesActors.Cli.Shell;

/// <summary>What a key did to the line being edited.</summary>
public enum KeyOutcome
{
    /// <summary>The line may have changed; redraw it.</summary>
    Edited,

    /// <summary>Enter: the line is complete.</summary>
    Submitted,

    /// <summary>Ctrl-D on an empty line.</summary>
    EndOfInput,

    /// <summary>Ctrl-L: clear the screen, then redraw.</summary>
    ClearScreen,
}

/// <summary>
/// The line editor's state and key handling, with no terminal: text, cursor, history browsing and Tab.
/// Keys are emacs-style, as in bash (docs/qvm-shell.md lists them). The terminal side is <see cref="TerminalLineSource"/>.
/// </summary>
public sealed class LineEditState(IReadOnlyList<string> history, Func<string, int, TabOutcome>? complete = null)
{
    private readonly StringBuilder _text = new();
    private int _historyIndex = history.Count;
    private string _draft = "";

    public string Text => _text.ToString();
    public int Cursor { get; private set; }

    /// <summary>Candidates a Tab could not choose between; the terminal prints them above the prompt.</summary>
    public IReadOnlyList<string> Listing { get; private set; } = [];

    public void Reset()
    {
        Set("");
        _historyIndex = history.Count;
        _draft = "";
    }

    public KeyOutcome Handle(ConsoleKeyInfo key)
    {
        Listing = [];
        var control = (key.Modifiers & ConsoleModifiers.Control) != 0;
        switch (key.Key)
        {
            case ConsoleKey.Enter:
                return KeyOutcome.Submitted;
            case ConsoleKey.Tab when !control:
                Complete();
                return KeyOutcome.Edited;
            case ConsoleKey.Backspace:
            case ConsoleKey.H when control:
                if (Cursor > 0)
                {
                    _text.Remove(--Cursor, 1);
                }
                return KeyOutcome.Edited;
            case ConsoleKey.Delete:
                DeleteAtCursor();
                return KeyOutcome.Edited;
            case ConsoleKey.D when control:
                if (_text.Length == 0)
                    return KeyOutcome.EndOfInput;
                DeleteAtCursor();
                return KeyOutcome.Edited;
            case ConsoleKey.LeftArrow when control:
                Cursor = WordStartBefore(Cursor);
                return KeyOutcome.Edited;
            case ConsoleKey.RightArrow when control:
                Cursor = WordEndAfter(Cursor);
                return KeyOutcome.Edited;
            case ConsoleKey.LeftArrow:
            case ConsoleKey.B when control:
                Cursor = Math.Max(0, Cursor - 1);
                return KeyOutcome.Edited;
            case ConsoleKey.RightArrow:
            case ConsoleKey.F when control:
                Cursor = Math.Min(_text.Length, Cursor + 1);
                return KeyOutcome.Edited;
            case ConsoleKey.Home:
            case ConsoleKey.A when control:
                Cursor = 0;
                return KeyOutcome.Edited;
            case ConsoleKey.End:
            case ConsoleKey.E when control:
                Cursor = _text.Length;
                return KeyOutcome.Edited;
            case ConsoleKey.UpArrow:
            case ConsoleKey.P when control:
                Browse(-1);
                return KeyOutcome.Edited;
            case ConsoleKey.DownArrow:
            case ConsoleKey.N when control:
                Browse(+1);
                return KeyOutcome.Edited;
            case ConsoleKey.U when control:
                _text.Remove(0, Cursor);
                Cursor = 0;
                return KeyOutcome.Edited;
            case ConsoleKey.K when control:
                _text.Remove(Cursor, _text.Length - Cursor);
                return KeyOutcome.Edited;
            case ConsoleKey.W when control:
                var start = WordStartBefore(Cursor);
                _text.Remove(start, Cursor - start);
                Cursor = start;
                return KeyOutcome.Edited;
            // Ctrl-C arrives as a key only where the terminal does not turn it into SIGINT; same meaning either way.
            case ConsoleKey.C when control:
                Reset();
                return KeyOutcome.Edited;
            case ConsoleKey.L when control:
                return KeyOutcome.ClearScreen;
        }
        if (key.KeyChar != '\0' && !char.IsControl(key.KeyChar))
        {
            _text.Insert(Cursor++, key.KeyChar);
        }
        return KeyOutcome.Edited;
    }

    /// <summary>Ctrl-C at the prompt (it came as a signal): forget the line.</summary>
    public void Interrupt() => Reset();

    private void DeleteAtCursor()
    {
        if (Cursor < _text.Length)
            _text.Remove(Cursor, 1);
    }

    private void Complete()
    {
        if (complete is null)
            return;
        var outcome = complete(Text, Cursor);
        _text.Clear().Append(outcome.Line);
        Cursor = Math.Clamp(outcome.Cursor, 0, _text.Length);
        Listing = outcome.Listing;
    }

    /// <summary>Up/Down: older/newer entries; past the newest is the line that was being typed.</summary>
    private void Browse(int step)
    {
        var target = Math.Clamp(_historyIndex + step, 0, history.Count);
        if (target == _historyIndex)
            return;
        if (_historyIndex == history.Count)
            _draft = Text;
        _historyIndex = target;
        Set(target == history.Count ? _draft : history[target]);
    }

    private void Set(string text)
    {
        _text.Clear().Append(text);
        Cursor = _text.Length;
    }

    private int WordStartBefore(int position)
    {
        var i = position;
        while (i > 0 && char.IsWhiteSpace(_text[i - 1]))
            i--;
        while (i > 0 && !char.IsWhiteSpace(_text[i - 1]))
            i--;
        return i;
    }

    private int WordEndAfter(int position)
    {
        var i = position;
        while (i < _text.Length && char.IsWhiteSpace(_text[i]))
            i++;
        while (i < _text.Length && !char.IsWhiteSpace(_text[i]))
            i++;
        return i;
    }

    /// <summary>
    /// The part of <paramref name="text"/> that fits after the prompt in <paramref name="width"/> columns, and the
    /// cursor's column in it: a long line scrolls sideways so that the cursor stays visible on one terminal row.
    /// </summary>
    public static (string Visible, int CursorColumn) View(string prompt, string text, int cursor, int width)
    {
        // One column is kept free: writing into the last column makes some terminals wrap.
        var room = Math.Max(1, width - prompt.Length - 1);
        var offset = 0;
        if (text.Length > room)
            offset = Math.Clamp(cursor - (room * 2 / 3), 0, text.Length - room);
        var visible = text.Substring(offset, Math.Min(room, text.Length - offset));
        return (visible, prompt.Length + cursor - offset);
    }
}
