using System.Collections.Concurrent;
using System.Text;
using QubesActors.Cli.Shell;
using Xunit;
using static QubesActors.IntegrationTests.Shell.LineEditStateTests;

namespace QubesActors.IntegrationTests.Shell;

/// <summary>The line editor's terminal loop with scripted keys: notices above the prompt, Ctrl-C, Ctrl-D, Tab listings.</summary>
public sealed class TerminalLineSourceTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private sealed class ScriptedKeys : IKeySource
    {
        private readonly ConcurrentQueue<ConsoleKeyInfo> _keys = new();
        public bool KeyAvailable => !_keys.IsEmpty;
        public ConsoleKeyInfo ReadKey() => _keys.TryDequeue(out var k) ? k : throw new InvalidOperationException("no key");

        public void Type(string text)
        {
            foreach (var c in text)
                _keys.Enqueue(c == '\r' ? Key(ConsoleKey.Enter) : c == '\t' ? new ConsoleKeyInfo('\t', ConsoleKey.Tab, false, false, false) : Char(c));
        }

        public void Press(ConsoleKeyInfo key) => _keys.Enqueue(key);
    }

    /// <summary>A terminal's screen as text: what was written, in order.</summary>
    private sealed class Screen : TextWriter
    {
        private readonly StringBuilder _text = new();
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_text)
                _text.Append(value);
        }

        public override void Write(string? value)
        {
            lock (_text)
                _text.Append(value);
        }

        public override string ToString()
        {
            lock (_text)
                return _text.ToString();
        }

        public async Task WaitForAsync(string text)
        {
            var deadline = DateTime.UtcNow + Patience;
            while (!ToString().Contains(text, StringComparison.Ordinal))
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"'{text}' never appeared on the screen:\n{ToString()}");
                await Task.Delay(10);
            }
        }
    }

    private readonly ScriptedKeys _keys = new();
    private readonly Screen _screen = new();
    private readonly NoticeBoard _board;
    private readonly TerminalLineSource _source;

    public TerminalLineSourceTests()
    {
        _board = new NoticeBoard(line => _screen.Write("direct: " + line + "\n"));
        var completer = new ShellCompleter(ShellCompleterTests.Tree(), new FakeCompletionData());
        var state = new LineEditState([], (line, cursor) => TabEdit.Apply(line, cursor, completer.Complete(line, cursor)));
        _source = new TerminalLineSource(_keys, _screen, _board, state, () => 80);
    }

    [Fact]
    public async Task Returns_the_typed_line()
    {
        var read = _source.ReadLineAsync(CancellationToken.None);
        _keys.Type("ls\r");
        Assert.Equal("ls", await read.WaitAsync(Patience));
        Assert.Contains("qvm> ls", _screen.ToString());
    }

    [Fact]
    public async Task A_notice_is_printed_above_the_prompt_and_the_half_typed_line_is_redrawn_below_it()
    {
        var read = _source.ReadLineAsync(CancellationToken.None);
        _keys.Type("st");
        await _screen.WaitForAsync("qvm> st");
        _board.Post("[event] work: domain-start");
        await _screen.WaitForAsync("[event] work: domain-start");
        _keys.Type("art\r");
        Assert.Equal("start", await read.WaitAsync(Patience));
        var screen = _screen.ToString();
        var notice = screen.IndexOf("\r\u001b[2K[event] work: domain-start\r\n", StringComparison.Ordinal);
        Assert.True(notice >= 0, screen);
        // Right after the notice, the prompt and what was typed so far come back.
        Assert.StartsWith("\r\u001b[2Kqvm> st\u001b[", screen[(notice + "\r\u001b[2K[event] work: domain-start\r\n".Length)..]);
        Assert.DoesNotContain("direct:", screen);
    }

    [Fact]
    public async Task Notices_outside_the_editor_are_written_directly()
    {
        _board.Post("before");
        var read = _source.ReadLineAsync(CancellationToken.None);
        _keys.Type("x\r");
        await read.WaitAsync(Patience);
        _board.Post("after");
        Assert.Contains("direct: before", _screen.ToString());
        Assert.Contains("direct: after", _screen.ToString());
    }

    [Fact]
    public async Task Ctrl_c_at_the_prompt_abandons_the_line_and_the_next_one_is_read()
    {
        var read = _source.ReadLineAsync(CancellationToken.None);
        _keys.Type("start wo");
        await _screen.WaitForAsync("qvm> start wo");
        _source.Interrupt();
        await _screen.WaitForAsync("^C");
        _keys.Type("ls\r");
        Assert.Equal("ls", await read.WaitAsync(Patience));
    }

    [Fact]
    public async Task Ctrl_d_on_an_empty_line_is_the_end_of_input()
    {
        var read = _source.ReadLineAsync(CancellationToken.None);
        _keys.Press(Ctrl('d'));
        Assert.Null(await read.WaitAsync(Patience));
    }

    [Fact]
    public async Task Tab_completes_and_lists_above_the_prompt()
    {
        var read = _source.ReadLineAsync(CancellationToken.None);
        _keys.Type("sta\t");
        await _screen.WaitForAsync("qvm> start ");
        _keys.Type("sys-\t");
        await _screen.WaitForAsync("sys-firewall  sys-net\r\n");
        _keys.Type("n\t\r");
        Assert.Equal("start sys-net ", await read.WaitAsync(Patience));
    }

    [Fact]
    public async Task Untrusted_control_characters_in_a_notice_are_not_sent_to_the_terminal()
    {
        var read = _source.ReadLineAsync(CancellationToken.None);
        _board.Post("evil \u001b]0;title\u0007 text");
        await _screen.WaitForAsync("evil ?]0;title? text");
        _keys.Type("\r");
        await read.WaitAsync(Patience);
    }
}
