using System.CommandLine;
using System.Net.Sockets;
using QubesActors.Cli;
using QubesActors.Cli.Shell;
using Spectre.Console;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

/// <summary>
/// The session loop in process, on a stand-in command tree (the real qvm commands land separately): statuses,
/// errors that never end the session, Ctrl-C, builtins, the refusal of a nested shell.
/// </summary>
public sealed class ShellSessionTests
{
    private readonly StringWriter _out = new();
    private readonly StringWriter _err = new();
    private readonly QvmContext _context;
    private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ShellSessionTests()
    {
        _context = new QvmContext("/nonexistent/qubesd.sock", PlainConsole.On(_out), _err);
    }

    private RootCommand Tree(QvmContext context)
    {
        var root = new RootCommand("stand-in qvm");
        var words = new Argument<string[]>("words") { Arity = ArgumentArity.OneOrMore };
        var echo = new Command("echo", "Print the words") { words };
        echo.SetAction(parse => context.Out.Profile.Out.Writer.WriteLine(string.Join('|', parse.GetValue(words)!)));
        root.Subcommands.Add(echo);
        var code = new Argument<int>("code");
        var fail = new Command("fail", "Return a status") { code };
        fail.SetAction(parse => parse.GetValue(code));
        root.Subcommands.Add(fail);
        var boom = new Command("boom", "Throw");
        boom.SetAction((Func<ParseResult, int>)(_ => throw new InvalidOperationException("kaboom")));
        root.Subcommands.Add(boom);
        var offline = new Command("offline", "Fail to connect");
        offline.SetAction((Func<ParseResult, int>)(_ => throw new SocketException((int)SocketError.ConnectionRefused)));
        root.Subcommands.Add(offline);
        var wait = new Command("wait", "Wait until cancelled");
        wait.SetAction(async (_, ct) =>
        {
            _waiting.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        });
        root.Subcommands.Add(wait);
        var stubborn = new Command("stubborn", "Ignore cancellation");
        stubborn.SetAction(async (_, _) =>
        {
            _waiting.TrySetResult();
            await new TaskCompletionSource().Task;
        });
        root.Subcommands.Add(stubborn);
        root.Subcommands.Add(new Command("start", "Start a qube") { new Argument<string>("qube") });
        root.Subcommands.Add(ShellCommand.Create(context));
        return root;
    }

    private ShellSession Session() => new(_context, build: Tree);

    private async Task<int> RunScriptAsync(string script, bool errExit = false)
    {
        await using var session = Session();
        return await session.RunAsync(new TextLineSource(new StringReader(script)), new ShellOptions(Interactive: false, errExit));
    }

    [Fact]
    public async Task Lines_run_in_order_with_shell_quoting()
    {
        Assert.Equal(0, await RunScriptAsync("echo a 'b c'\necho \"d e\" f\\ g\n"));
        Assert.Equal("a|b c\nd e|f g\n", _out.ToString().ReplaceLineEndings("\n"));
        Assert.Equal("", _err.ToString());
    }

    [Fact]
    public async Task The_status_is_that_of_the_last_command()
    {
        Assert.Equal(0, await RunScriptAsync("fail 3\necho ok\n"));
        Assert.Equal(3, await RunScriptAsync("echo ok\nfail 3\n"));
    }

    [Fact]
    public async Task Blank_lines_and_comments_do_not_change_the_status() =>
        Assert.Equal(4, await RunScriptAsync("fail 4\n\n   \n# a comment\n"));

    [Fact]
    public async Task Errexit_stops_at_the_first_failure_with_its_status()
    {
        Assert.Equal(5, await RunScriptAsync("echo one\nfail 5\necho two\n", errExit: true));
        Assert.Equal("one\n", _out.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task Exit_leaves_with_its_status_or_the_last_one()
    {
        Assert.Equal(7, await RunScriptAsync("exit 7\necho never\n"));
        Assert.Equal(3, await RunScriptAsync("fail 3\nquit\necho never\n"));
        Assert.DoesNotContain("never", _out.ToString());
    }

    [Fact]
    public async Task An_exception_is_one_line_and_the_session_goes_on()
    {
        Assert.Equal(0, await RunScriptAsync("boom\necho still here\n"));
        Assert.Equal("line 1: error: kaboom\n", _err.ToString().ReplaceLineEndings("\n"));
        Assert.Contains("still|here", _out.ToString());
    }

    [Fact]
    public async Task An_unreachable_daemon_names_the_socket()
    {
        Assert.Equal(1, await RunScriptAsync("offline\n"));
        Assert.StartsWith("line 1: cannot reach qubesd at /nonexistent/qubesd.sock: ", _err.ToString());
    }

    [Fact]
    public async Task Unknown_commands_get_a_suggestion()
    {
        Assert.Equal(2, await RunScriptAsync("strat work\n"));
        Assert.Equal("line 1: unknown command 'strat' (did you mean start?); type 'help' for the commands\n", _err.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task Parse_errors_are_reported_without_the_whole_help()
    {
        Assert.Equal(2, await RunScriptAsync("fail notanumber\n"));
        var err = _err.ToString();
        Assert.Contains("notanumber", err);
        Assert.Contains("fail: error: ", err);
        Assert.Contains("fail --help' for more information.", err);
        Assert.DoesNotContain("Usage", err + _out);
    }

    [Fact]
    public async Task A_syntax_error_has_status_2()
    {
        Assert.Equal(ShellSession.UsageError, await RunScriptAsync("echo 'open\n"));
        Assert.Equal("line 1: syntax error: unterminated single quote\n", _err.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task The_shell_is_refused_inside_the_shell()
    {
        Assert.Equal(2, await RunScriptAsync("shell\n"));
        Assert.Contains("already in the shell", _err.ToString());
    }

    [Fact]
    public async Task Help_lists_the_commands_of_the_tree_and_the_builtins_but_not_shell()
    {
        Assert.Equal(0, await RunScriptAsync("help\n"));
        var text = _out.ToString();
        foreach (var name in new[] { "echo", "fail", "start", "exit", "quit", "help", "sleep", "watch" })
            Assert.Contains($"\n  {name} ", "\n" + text);
        Assert.DoesNotContain("  shell ", text);
    }

    [Fact]
    public async Task Help_of_one_command_is_its_usage()
    {
        Assert.Equal(0, await RunScriptAsync("help echo\n"));
        Assert.Contains("Print the words", _out.ToString());
        Assert.Contains("<words>", _out.ToString());
    }

    [Fact]
    public async Task Ctrl_c_cancels_the_running_command_and_the_session_continues()
    {
        await using var session = Session();
        Assert.False(session.Interrupt());
        var run = session.RunLineAsync("wait");
        await _waiting.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(session.Interrupt());
        Assert.Equal(ShellSession.Interrupted, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("cancelled\n", _err.ToString().ReplaceLineEndings("\n"));
        Assert.Equal(0, await session.RunLineAsync("echo next"));
        Assert.False(session.Interrupt());
    }

    [Fact]
    public async Task Sleep_is_cancelled_by_ctrl_c()
    {
        await using var session = Session();
        var run = session.RunLineAsync("sleep 600");
        await Task.Delay(100);
        Assert.True(session.Interrupt());
        Assert.Equal(ShellSession.Interrupted, await run.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_second_ctrl_c_leaves_a_command_that_ignores_cancellation()
    {
        await using var session = Session();
        var run = session.RunLineAsync("stubborn");
        await _waiting.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(session.Interrupt());
        Assert.False(run.IsCompleted);
        Assert.True(session.Interrupt());
        Assert.Equal(ShellSession.Interrupted, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("did not stop", _err.ToString());
    }

    [Fact]
    public async Task Watch_against_an_unreachable_daemon_is_an_error_not_an_exit()
    {
        Assert.Equal(0, await RunScriptAsync("watch\necho after\n"));
        Assert.StartsWith("line 1: cannot reach qubesd at /nonexistent/qubesd.sock", _err.ToString());
        Assert.Contains("after", _out.ToString());
    }

    [Fact]
    public async Task Builtins_yield_to_a_qvm_command_of_the_same_name()
    {
        await using var session = new ShellSession(_context, build: c =>
        {
            var root = Tree(c);
            var watch = new Command("watch", "qvm's own watch");
            watch.SetAction(_ => c.Out.Profile.Out.Writer.WriteLine("qvm watch"));
            root.Subcommands.Add(watch);
            return root;
        });
        Assert.Equal(0, await session.RunLineAsync("watch"));
        Assert.Contains("qvm watch", _out.ToString());
    }
}
