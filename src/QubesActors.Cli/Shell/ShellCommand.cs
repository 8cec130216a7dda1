using System.CommandLine;
using QubesActors.Cli.Shell;

namespace QubesActors.Cli;

/// <summary><c>qvm shell</c>: an interactive session on the qvm commands (docs/qvm-shell.md).</summary>
public static class ShellCommand
{
    public const string Name = "shell";

    public static Command Create(QvmContext context)
    {
        var historyFile = new Option<string?>("--history-file")
        {
            Description = "History file (default: $XDG_STATE_HOME/qubesactors/qvm_history or ~/.local/state/qubesactors/qvm_history)",
            HelpName = "PATH",
        };
        var errExit = new Option<bool>("--errexit", "-e") { Description = "Reading a script: stop at the first failing line, with its status" };
        var command = new Command(Name, "Interactive session: completion, history, live events ('watch'); reads a script from a pipe")
        {
            historyFile,
            errExit,
        };
        // Synchronous on purpose: System.CommandLine installs its own Ctrl-C handling (which would end the session
        // two seconds after a Ctrl-C) around asynchronous actions unless the caller turned it off; qvm's RunAsync
        // does, but the shell must not depend on how it is invoked. The shell handles Ctrl-C itself.
        command.SetAction(parse =>
        {
            // qvm --socket PATH shell: every line of the session talks to that daemon.
            if (parse.RootCommandResult.Command.Options.FirstOrDefault(o => o.Name == Infrastructure.Qvm.SocketOptionName) is Option<string> socket
                && parse.GetValue(socket) is { Length: > 0 } path)
                context.SocketPath = path;
            return RunAsync(context, parse.GetValue(historyFile), parse.GetValue(errExit)).GetAwaiter().GetResult();
        });
        return command;
    }

    private static async Task<int> RunAsync(QvmContext context, string? historyFile, bool errExit)
    {
        // stdin is the shell's own (its lines): qvm run --pass-io inside the shell forwards none, and so never leaves
        // a read pending on the terminal that would steal the next line's keys.
        context.StandardInput = null;
        // The editor draws with ANSI sequences: a terminal on both sides, and not one that declares it cannot.
        var interactive = !Console.IsInputRedirected && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";
        var data = new DaemonCompletionData(() => context.Client);
        await using var session = new ShellSession(context, completionData: data);
        ShellHistory? history = null;
        ILineSource source;
        if (interactive)
        {
            var path = historyFile ?? ShellHistory.DefaultPath(Environment.GetEnvironmentVariable);
            try
            {
                history = ShellHistory.Load(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await context.Error.WriteLineAsync($"history: cannot read {path}: {e.Message} (this session's lines are not saved)").ConfigureAwait(false);
                history = ShellHistory.InMemory();
            }
            var editor = new LineEditState(history.Lines, (line, cursor) => TabEdit.Apply(line, cursor, new ShellCompleter(session.BuildTree(), data).Complete(line, cursor)));
            source = new TerminalLineSource(new ConsoleKeySource(), context.Out.Profile.Out.Writer, session.Board, editor);
        }
        else
        {
            source = new TextLineSource(Console.In);
        }

        void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
        {
            if (session.Interrupt())
            {
                e.Cancel = true;
            }
            else if (interactive)
            {
                e.Cancel = true;
                source.Interrupt();
            }
            // Otherwise a script between commands: Ctrl-C ends it, as it ends sh.
        }

        Console.CancelKeyPress += OnCancelKeyPress;
        try
        {
            if (interactive)
                context.Out.Profile.Out.Writer.WriteLine("qvm shell: 'help' lists the commands, Tab completes, Ctrl-D leaves.");
            return await session.RunAsync(source, new ShellOptions(interactive, errExit), history).ConfigureAwait(false);
        }
        finally
        {
            Console.CancelKeyPress -= OnCancelKeyPress;
        }
    }
}
