using Spectre.Console;

namespace QubesActors.Audit;

/// <summary>
/// Where a run writes and which environment it reads: the process's in production, a StringWriter console and an
/// explicit environment in tests (so a test run's QUBESD_* variables cannot leak into the settings).
/// </summary>
public sealed record AuditContext(IAnsiConsole Out, TextWriter Error, IReadOnlyDictionary<string, string?>? Environment = null)
{
    public static AuditContext FromEnvironment() => new(AnsiConsole.Console, Console.Error);

    /// <summary>Plain writer under the console: log lines are never wrapped or markup-parsed.</summary>
    public TextWriter Writer => Out.Profile.Out.Writer;
}
