using System.Net.Sockets;
using System.Text;
using QubesActors.Sandbox.Qrexec;

namespace QubesActors.Cli.Infrastructure;

/// <summary>
/// Calls from dom0 through qubesd's dom0 qrexec socket (docs/qrexec.md "From dom0"): qubesd routes them (target
/// started, <c>@dispvm</c> created and killed when the call ends) and runs the service in the target. Closing the
/// socket (Ctrl-C) ends the call: qubesd kills the service and a disposable made for it.
/// </summary>
internal static class Dom0Qrexec
{
    /// <summary>Exit code of a refused call, with "Request refused: …" on stderr (as qrexec-client in Qubes).</summary>
    public const int Refused = 126;

    /// <summary>Fails early, before the command touches any qube, when there is no socket to call through.</summary>
    public static string CheckSocket(Invocation inv)
    {
        var path = inv.QrexecSocketPath;
        if (!OperatingSystem.IsLinux())
            throw new QvmRuntimeException("qrexec calls from dom0 need Linux and qubesd on the sandbox backend");
        // File.Exists is true for a socket (anything that is not a directory).
        if (!File.Exists(path))
            throw new QvmRuntimeException(
                $"dom0's qrexec socket '{path}' does not exist: qubesd serves it only on the sandbox backend " +
                $"(run 'qubesd --backend sandbox' as root), or name it with --qrexec-socket PATH or {QvmContext.QrexecSocketVariable}");
        return path;
    }

    /// <summary>One call; the service's exit code, or <see cref="Refused"/>. Connection failures are runtime errors (exit 1).</summary>
    public static async Task<int> CallAsync(Invocation inv, string target, string serviceAndArgument, Stream stdin, Stream stdout, Stream stderr)
    {
        var path = CheckSocket(inv);
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException();
        try
        {
            return await QrexecClient.CallAsync(path, target, serviceAndArgument, stdin, stdout, stderr, inv.Ct).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new QvmRuntimeException($"permission denied on dom0's qrexec socket '{path}': it is for root only");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            throw new QvmRuntimeException($"nothing listens on dom0's qrexec socket '{path}': is qubesd running?");
        }
        catch (Exception e) when (e is SocketException or IOException && !inv.Ct.IsCancellationRequested)
        {
            throw new QvmRuntimeException($"qrexec call {serviceAndArgument} to {target} failed: {e.Message}");
        }
    }

    /// <summary>Where the refused message goes when the service's stderr is not passed: the user still sees it.</summary>
    public static void ReportRefusal(Invocation inv, LastWriteStream stderr)
    {
        // 126 is also an ordinary exit code a command may use: only qubesd's refusal line is shown.
        var text = Encoding.UTF8.GetString(stderr.Last).TrimEnd('\n');
        if (text.StartsWith("Request refused", StringComparison.Ordinal))
            inv.Error.ErrorLine(text);
    }

    /// <summary>The raw standard output of the command (or the console's writer as text for in-process runs).</summary>
    public static Stream Stdout(Invocation inv) => inv.Context.StandardOutput ?? new TextWriterStream(inv.Out.Profile.Out.Writer);

    public static Stream Stderr(Invocation inv) => inv.Context.StandardError ?? new TextWriterStream(inv.Error);
}
