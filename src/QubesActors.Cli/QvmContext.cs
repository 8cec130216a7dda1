using QubesActors.AdminApi.Client;
using Spectre.Console;

namespace QubesActors.Cli;

/// <summary>
/// What every qvm command runs with: where qubesd listens, and where output goes. One-shot runs and
/// <c>qvm shell</c> share it; the shell passes the same context to every line it runs.
/// </summary>
public sealed class QvmContext(string socketPath, IAnsiConsole output, TextWriter error)
{
    public const string SocketVariable = "QUBESD_SOCKET";

    /// <summary>Where qvm looks when neither --socket nor QUBESD_SOCKET is given: the default layout's socket.</summary>
    public const string DefaultSocket = "state/qubesd.sock";

    public string SocketPath { get; set; } = socketPath;
    public IAnsiConsole Out { get; } = output;
    public TextWriter Error { get; } = error;

    public AdminClient Client => new(SocketPath);

    public static QvmContext FromEnvironment() =>
        new(Environment.GetEnvironmentVariable(SocketVariable) is { Length: > 0 } s ? s : DefaultSocket, AnsiConsole.Console, Console.Error);
}
