using System.CommandLine;
using System.CommandLine.Invocation;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Shell;

/// <summary>How a session runs: history only when a person types, errexit for scripts that must stop at the first failure.</summary>
public sealed record ShellOptions(bool Interactive, bool ErrExit = false);

/// <summary>
/// The shell's loop: read a line, split it, run it against the qvm command tree (plus the shell's own
/// commands), report failures in one line, keep going. The exit status is that of <c>exit N</c>, else that of
/// the last command run (as sh); with <see cref="ShellOptions.ErrExit"/> the first failure ends the session.
/// </summary>
public sealed class ShellSession : IAsyncDisposable
{
    /// <summary>Status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;

    /// <summary>
    /// Status of a line that is not a valid command: an open quote, an unknown command, a parse error. 2 as for sh's
    /// syntax errors and argparse's usage errors, so a script sees what a one-shot qvm would return.
    /// </summary>
    public const int UsageError = 2;

    private readonly QvmContext _context;
    private readonly Func<QvmContext, RootCommand> _build;
    private readonly DaemonCompletionData? _completionData;
    private readonly Lock _lock = new();
    private CancellationTokenSource? _running;
    private TaskCompletionSource? _abandon;
    private EventWatch? _watch;
    private volatile bool _watchEnded;
    private int? _exit;
    private string _errorPrefix = "";

    public ShellSession(QvmContext context, NoticeBoard? board = null, Func<QvmContext, RootCommand>? build = null, DaemonCompletionData? completionData = null)
    {
        _context = context;
        _build = build ?? QvmApp.Build;
        _completionData = completionData;
        Board = board ?? new NoticeBoard(line => Out.WriteLine(line));
    }

    public NoticeBoard Board { get; }
    public int LastStatus { get; private set; }
    public bool ExitRequested => _exit is not null;
    public bool Watching => _watch is not null && !_watchEnded;

    /// <summary>Raw output: Spectre's console would re-wrap long lines at its width, which breaks piped output.</summary>
    private TextWriter Out => _context.Out.Profile.Out.Writer;

    public async Task<int> RunAsync(ILineSource source, ShellOptions options, ShellHistory? history = null, CancellationToken ct = default)
    {
        var lineNumber = 0;
        while (_exit is null)
        {
            string? line;
            try
            {
                line = await source.ReadLineAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            if (line is null)
                break;
            lineNumber++;
            if (history is not null)
                AddToHistory(history, line);
            // A script's errors name their line; a person sees the line right above the error.
            _errorPrefix = options.Interactive ? "" : $"line {lineNumber}: ";
            var status = await RunLineAsync(line, ct).ConfigureAwait(false);
            if (options.ErrExit && status is not (null or 0))
                break;
        }
        await StopWatchAsync().ConfigureAwait(false);
        return _exit ?? LastStatus;
    }

    private void AddToHistory(ShellHistory history, string line)
    {
        try
        {
            history.Add(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error($"history: cannot write {history.Path}: {e.Message}");
        }
    }

    /// <summary>Runs one line; null for a blank line or a comment (the status stays what it was).</summary>
    public async Task<int?> RunLineAsync(string line, CancellationToken ct = default)
    {
        var trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            return null;
        IReadOnlyList<string> tokens;
        try
        {
            tokens = ShellTokenizer.Tokenize(line);
        }
        catch (ShellSyntaxException e)
        {
            Error($"syntax error: {e.Message}");
            return LastStatus = UsageError;
        }
        if (tokens.Count == 0)
            return null;
        return LastStatus = await InvokeAsync(tokens, ct).ConfigureAwait(false);
    }

    private async Task<int> InvokeAsync(IReadOnlyList<string> tokens, CancellationToken ct)
    {
        var root = BuildTree();
        if (root.Subcommands.FirstOrDefault(c => c.Name == tokens[0] || c.Aliases.Contains(tokens[0])) is { Name: ShellCommand.Name })
        {
            Error("shell: already in the shell (type 'exit' to leave it)");
            return UsageError;
        }
        if (!tokens[0].StartsWith('-') && !root.Subcommands.Any(c => c.Name == tokens[0] || c.Aliases.Contains(tokens[0])))
        {
            var near = Suggestions.Near(tokens[0], root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
            Error($"unknown command '{tokens[0]}'" + (near.Count > 0 ? $" (did you mean {string.Join(", ", near)}?)" : "") + "; type 'help' for the commands");
            return UsageError;
        }
        var parse = root.Parse(tokens, QvmApp.ParserConfiguration);
        if (parse.Errors.Count > 0 && parse.Action is null or ParseErrorAction)
        {
            // As one-shot qvm reports them (argparse-style), not System.CommandLine's help after every typo.
            var path = Qvm.PathOf(parse);
            foreach (var error in parse.Errors)
                Error($"{path}: error: {error.Message}");
            Error($"Try '{path} --help' for more information.");
            return UsageError;
        }
        var configuration = new InvocationConfiguration
        {
            // Exceptions come here to become one line; Ctrl-C is the shell's, not System.CommandLine's.
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
            Output = Out,
            Error = _context.Error,
        };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var abandon = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _running = cts;
            _abandon = abandon;
        }
        try
        {
            var run = parse.InvokeAsync(configuration, cts.Token);
            if (await Task.WhenAny(run, abandon.Task).ConfigureAwait(false) != run)
            {
                // A second Ctrl-C: the command ignores cancellation; leave it behind rather than the shell.
                _ = run.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                Error("interrupted: the command did not stop when cancelled and was left running in the background");
                return Interrupted;
            }
            return await run.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            Error("cancelled");
            return Interrupted;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Error(ShellErrors.Describe(e, _context.SocketPath));
            return 1;
        }
        finally
        {
            lock (_lock)
            {
                _running = null;
                _abandon = null;
            }
        }
    }

    /// <summary>
    /// Ctrl-C: cancels the running command's token (a second Ctrl-C stops waiting for it). False when no command
    /// runs, so the caller can treat it as an interrupt of the prompt instead.
    /// </summary>
    public bool Interrupt()
    {
        CancellationTokenSource? running;
        TaskCompletionSource? abandon;
        lock (_lock)
        {
            running = _running;
            abandon = _abandon;
        }
        if (running is null)
            return false;
        try
        {
            if (running.IsCancellationRequested)
                abandon?.TrySetResult();
            else
                running.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The command ended between the check and the cancel.
        }
        return true;
    }

    /// <summary>The qvm tree plus the shell's own commands (help, exit, quit, sleep, watch), unless qvm already has one by that name.</summary>
    public RootCommand BuildTree()
    {
        var root = _build(_context);
        foreach (var builtin in Builtins())
        {
            if (!root.Subcommands.Any(c => c.Name == builtin.Name || c.Aliases.Contains(builtin.Name)))
                root.Subcommands.Add(builtin);
        }
        return root;
    }

    private IEnumerable<Command> Builtins()
    {
        var topic = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore, Description = "A command to show the help of" };
        var help = new Command("help", "List the commands, or show the help of one") { topic };
        help.SetAction(async (parse, ct) => await HelpAsync(parse.GetValue(topic) ?? [], ct).ConfigureAwait(false));
        yield return help;

        foreach (var name in new[] { "exit", "quit" })
        {
            var code = new Argument<int?>("status") { Arity = ArgumentArity.ZeroOrOne, Description = "Exit status (default: that of the last command)" };
            var exit = new Command(name, "Leave the shell (Ctrl-D does too)") { code };
            exit.SetAction(parse =>
            {
                _exit = parse.GetValue(code) ?? LastStatus;
                return _exit.Value;
            });
            yield return exit;
        }

        var seconds = new Argument<double>("seconds") { Description = "How long" };
        var sleep = new Command("sleep", "Wait (in a script, e.g. for watched events); Ctrl-C stops it") { seconds };
        sleep.SetAction(async (parse, ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(seconds))), ct).ConfigureAwait(false);
            return 0;
        });
        yield return sleep;

        var qube = new Argument<string?>("qube") { Arity = ArgumentArity.ZeroOrOne, Description = "Only this qube's events" };
        var off = new Option<bool>("--off") { Description = "Stop watching" };
        var watch = new Command("watch", "Show events live while you type; again to stop") { qube, off };
        watch.SetAction(async (parse, ct) => await WatchAsync(parse.GetValue(qube), parse.GetValue(off)).ConfigureAwait(false));
        yield return watch;
    }

    private async Task<int> HelpAsync(string[] topic, CancellationToken ct)
    {
        if (topic.Length > 0)
            return await InvokeAsync([.. topic, "--help"], ct).ConfigureAwait(false);
        var commands = BuildTree().Subcommands.Where(c => !c.Hidden && c.Name != ShellCommand.Name)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .Select(c => (Name: string.Join(", ", c.Aliases.Prepend(c.Name)), c.Description))
            .ToList();
        var width = commands.Count == 0 ? 0 : commands.Max(c => c.Name.Length);
        Out.WriteLine("Commands:");
        foreach (var (name, description) in commands)
            Out.WriteLine($"  {name.PadRight(width)}  {description}");
        Out.WriteLine();
        Out.WriteLine("'help COMMAND' or 'COMMAND --help' shows a command's options. Tab completes commands, qubes, properties");
        Out.WriteLine("and values; Up/Down browse the history; Ctrl-C cancels the running command; Ctrl-D or 'exit' leaves.");
        return 0;
    }

    private async Task<int> WatchAsync(string? qube, bool off)
    {
        var wasWatching = Watching;
        await StopWatchAsync().ConfigureAwait(false);
        if (off || (qube is null && wasWatching))
        {
            Out.WriteLine(wasWatching ? "watch: stopped" : "watch: not watching");
            return 0;
        }
        var dest = qube ?? "dom0";
        _watchEnded = false;
        var watch = await EventWatch.StartAsync(_context.Client, dest,
            e =>
            {
                _completionData?.Observe(e);
                Board.Post(EventWatch.Format(e));
            },
            reason =>
            {
                _watchEnded = true;
                Board.Post($"[watch] stopped: {reason}");
            }).ConfigureAwait(false);
        _watch = watch;
        Out.WriteLine($"watch: showing events of {(qube is null ? "all qubes" : qube)} ('watch' again stops)");
        return 0;
    }

    private async Task StopWatchAsync()
    {
        if (Interlocked.Exchange(ref _watch, null) is { } watch)
            await watch.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Control characters escaped as in qvm's own error lines: messages can quote what qubesd or a qube sent.</summary>
    private void Error(string message) => _context.Error.ErrorLine(_errorPrefix + message);

    public async ValueTask DisposeAsync() => await StopWatchAsync().ConfigureAwait(false);
}
