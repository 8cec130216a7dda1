namespace QubesActors.Cli.Shell;

/// <summary>Where the shell's lines come from: the line editor on a terminal, or plain text (a pipe, a script).</summary>
public interface ILineSource
{
    /// <summary>The next line, or null at the end of input (EOF, Ctrl-D).</summary>
    Task<string?> ReadLineAsync(CancellationToken ct);

    /// <summary>Ctrl-C while the user is typing (not while a command runs).</summary>
    void Interrupt();
}

/// <summary>Lines from a reader, without editing or completion: how scripts and tests drive the shell.</summary>
public sealed class TextLineSource(TextReader reader, Action? onInterrupt = null) : ILineSource
{
    public async Task<string?> ReadLineAsync(CancellationToken ct) => await reader.ReadLineAsync(ct).ConfigureAwait(false);

    public void Interrupt() => onInterrupt?.Invoke();
}
