using System.Diagnostics;

namespace QubesActors.Sandbox.Network;

/// <summary>A command of the network shell failed; the message holds the command line, exit code and stderr.</summary>
public sealed class NetworkCommandException(string message, int exitCode, string standardError) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
    public string StandardError { get; } = standardError;
}

/// <summary>
/// Runs <c>ip</c> and <c>nft</c> as separate processes (Process.Start execs a new image; the CLR itself is never
/// forked), feeding scripts on stdin so nothing passes through a shell.
/// </summary>
internal static class CommandRunner
{
    /// <param name="netNamespace">A named network namespace to start the command in (by a thread that joined it), or null.</param>
    public static async Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken,
        string? netNamespace = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);

        Process? started;
        try
        {
            started = netNamespace is null
                ? Process.Start(start)
                : NetNamespaces.In(Path.Combine(NetNamespaces.Directory, netNamespace), () => Process.Start(start));
        }
        catch (IOException e)
        {
            throw new NetworkCommandException($"`{string.Join(' ', arguments.Prepend(file))}` in network namespace {netNamespace}: {e.Message}", -1, e.Message);
        }
        using var process = started ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            try
            {
                if (standardInput is not null)
                    await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The command exited before reading its script (broken pipe): its exit code and stderr say why.
            }
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }
        var output = await stdout.ConfigureAwait(false);
        var error = await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            var command = string.Join(' ', arguments.Prepend(file));
            var script = standardInput is null ? "" : $"\n--- stdin ---\n{standardInput}";
            throw new NetworkCommandException($"`{command}` exited with {process.ExitCode}: {error.Trim()}{script}", process.ExitCode, error);
        }
        return output;
    }
}
