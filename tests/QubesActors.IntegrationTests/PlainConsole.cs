using Spectre.Console;

namespace QubesActors.IntegrationTests;

/// <summary>What in-process runs of qvm and qubes-audit write to: a console without ANSI, colours or interaction.</summary>
internal static class PlainConsole
{
    public static IAnsiConsole On(TextWriter output) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Ansi = AnsiSupport.No,
        ColorSystem = ColorSystemSupport.NoColors,
        Interactive = InteractionSupport.No,
        Out = new AnsiConsoleOutput(output),
    });
}

/// <summary>A StringWriter that can be read while a streaming command writes to it.</summary>
internal sealed class LockedWriter : StringWriter
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
