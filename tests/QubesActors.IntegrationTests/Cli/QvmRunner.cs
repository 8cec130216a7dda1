using QubesActors.Cli;
using Spectre.Console;

namespace QubesActors.IntegrationTests.Cli;

/// <summary>What one qvm run showed the user: exit code, stdout, stderr.</summary>
internal sealed record QvmResult(int ExitCode, string Out, string Err)
{
    public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public override string ToString() => $"exit {ExitCode}\n--- out\n{Out}--- err\n{Err}";
}

/// <summary>Runs qvm in-process, as a user would type it, with a non-ANSI, non-interactive console on a StringWriter.</summary>
internal static class QvmRunner
{
    public static async Task<QvmResult> RunAsync(string socket, params string[] args) => await RunAsync(socket, CancellationToken.None, args);

    public static async Task<QvmResult> RunAsync(string socket, CancellationToken ct, params string[] args)
    {
        var (context, output, error) = Context(socket);
        var code = await QvmApp.RunAsync(args, context, ct);
        return new QvmResult(code, output.ToString().Replace("\r\n", "\n"), error.ToString().Replace("\r\n", "\n"));
    }

    public static (QvmContext Context, StringWriter Out, StringWriter Err) Context(string socket)
    {
        var output = new LockedWriter();
        var error = new LockedWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        return (new QvmContext(socket, console, error), output, error);
    }

    /// <summary>A StringWriter that can be read while a streaming command writes to it.</summary>
    private sealed class LockedWriter : StringWriter
    {
        private readonly Lock _lock = new();

        public override void Write(char value)
        {
            lock (_lock)
                base.Write(value);
        }

        public override void Write(string? value)
        {
            lock (_lock)
                base.Write(value);
        }

        public override void Write(char[] buffer, int index, int count)
        {
            lock (_lock)
                base.Write(buffer, index, count);
        }

        public override void WriteLine(string? value)
        {
            lock (_lock)
                base.WriteLine(value);
        }

        public override string ToString()
        {
            lock (_lock)
                return base.ToString();
        }
    }
}
