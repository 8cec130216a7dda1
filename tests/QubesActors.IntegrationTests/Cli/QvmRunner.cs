using QubesActors.Cli;

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
        var console = PlainConsole.On(output);
        return (new QvmContext(socket, console, error), output, error);
    }
}
