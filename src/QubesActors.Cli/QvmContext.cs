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
    public const string QrexecSocketVariable = "QUBESD_QREXEC_SOCKET";

    /// <summary>Where qvm looks when neither --socket nor QUBESD_SOCKET is given: the default layout's socket.</summary>
    public const string DefaultSocket = "state/qubesd.sock";

    /// <summary>dom0's qrexec socket, by default beside the Admin API socket (qubesd puts both in its state directory).</summary>
    public const string DefaultQrexecSocketName = "qrexec.sock";

    public string SocketPath { get; set; } = socketPath;
    public IAnsiConsole Out { get; } = output;
    public TextWriter Error { get; } = error;

    /// <summary>$QUBESD_QREXEC_SOCKET; null: <see cref="DefaultQrexecSocketName"/> beside the Admin API socket.</summary>
    public string? QrexecSocketPath { get; set; }

    /// <summary>
    /// The raw standard streams for <c>qvm run --pass-io</c> and the other qrexec commands (bytes, not text). Null:
    /// no input, and output through <see cref="Out"/> / <see cref="Error"/> as UTF-8 text (in-process runs, the tests).
    /// </summary>
    public Stream? StandardInput { get; set; }
    public Stream? StandardOutput { get; set; }
    public Stream? StandardError { get; set; }

    /// <summary>Whether stdout is a terminal: qvm run filters escape sequences by default then, as qvm-run.</summary>
    public bool OutputIsTerminal { get; set; }

    public AdminClient Client => new(SocketPath);

    public static QvmContext FromEnvironment() =>
        new(Environment.GetEnvironmentVariable(SocketVariable) is { Length: > 0 } s ? s : DefaultSocket, AnsiConsole.Console, Console.Error)
        {
            QrexecSocketPath = Environment.GetEnvironmentVariable(QrexecSocketVariable) is { Length: > 0 } q ? q : null,
            StandardInput = Console.OpenStandardInput(),
            StandardOutput = Console.OpenStandardOutput(),
            StandardError = Console.OpenStandardError(),
            OutputIsTerminal = !Console.IsOutputRedirected,
        };
}
