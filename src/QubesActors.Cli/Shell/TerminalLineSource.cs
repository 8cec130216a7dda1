namespace QubesActors.Cli.Shell;

/// <summary>Keys from a terminal (the console) or from a test.</summary>
public interface IKeySource
{
    bool KeyAvailable { get; }
    ConsoleKeyInfo ReadKey();
}

/// <summary>The console's keys, unechoed.</summary>
public sealed class ConsoleKeySource : IKeySource
{
    public bool KeyAvailable => Console.KeyAvailable;
    public ConsoleKeyInfo ReadKey() => Console.ReadKey(intercept: true);
}

/// <summary>
/// The interactive line source: a one-row line editor drawn with a few ANSI sequences. It polls for keys so that
/// two things can reach it between keys: notices (watched events, Tab listings), printed on the prompt's row
/// and followed by the prompt and the half-typed line redrawn below them; and Ctrl-C (a signal), which clears
/// the line. Everything it writes happens on its own loop, so output never interleaves with a redraw.
/// </summary>
public sealed class TerminalLineSource(
    IKeySource keys,
    TextWriter output,
    NoticeBoard board,
    LineEditState state,
    Func<int>? width = null,
    string prompt = "qvm> ") : ILineSource
{
    /// <summary>How often the loop looks for keys, notices and Ctrl-C; short enough to feel immediate.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);

    private const string ClearRow = "\r\u001b[2K";
    private readonly Func<int> _width = width ?? TerminalWidth;
    private volatile bool _interrupted;

    public async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        state.Reset();
        board.BeginEditing();
        try
        {
            Redraw();
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var busy = false;
                if (_interrupted)
                {
                    _interrupted = false;
                    state.Interrupt();
                    // As bash does: leave the abandoned line visible, marked, and start a fresh prompt.
                    output.Write("^C\r\n");
                    Redraw();
                    busy = true;
                }
                if (board.HasPending)
                {
                    PrintAbove(board.TakePending());
                    busy = true;
                }
                while (keys.KeyAvailable)
                {
                    busy = true;
                    switch (state.Handle(keys.ReadKey()))
                    {
                        case KeyOutcome.Submitted:
                            Redraw();
                            output.Write("\r\n");
                            output.Flush();
                            return state.Text;
                        case KeyOutcome.EndOfInput:
                            output.Write("\r\n");
                            output.Flush();
                            return null;
                        case KeyOutcome.ClearScreen:
                            output.Write("\u001b[H\u001b[2J");
                            break;
                    }
                    if (state.Listing.Count > 0)
                        PrintAbove([string.Join("  ", state.Listing)]);
                    else
                        Redraw();
                }
                if (!busy)
                    await Task.Delay(Poll, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            board.EndEditing();
        }
    }

    public void Interrupt() => _interrupted = true;

    /// <summary>Prints lines on the prompt's row and below, then the prompt again under them.</summary>
    private void PrintAbove(IEnumerable<string> lines)
    {
        foreach (var line in lines)
            output.Write(ClearRow + EventWatch.Sanitize(line) + "\r\n");
        Redraw();
    }

    private void Redraw()
    {
        var (visible, column) = LineEditState.View(prompt, state.Text, state.Cursor, _width());
        // ESC[nG: cursor to column n (1-based).
        output.Write($"{ClearRow}{prompt}{visible}\u001b[{column + 1}G");
        output.Flush();
    }

    private static int TerminalWidth()
    {
        try
        {
            return Console.WindowWidth is > 0 and var w ? w : 80;
        }
        catch (IOException)
        {
            return 80;
        }
    }
}
