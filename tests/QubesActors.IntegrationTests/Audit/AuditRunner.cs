using QubesActors.Audit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>What one qubes-audit run showed the user.</summary>
public sealed record AuditResult(int ExitCode, string Out, string Err)
{
    public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public override string ToString() => $"exit {ExitCode}\n--- out\n{Out}--- err\n{Err}";
}

/// <summary>Runs qubes-audit in-process on a non-ANSI console, with an empty environment (no QUBESD_* leaks in).</summary>
internal static class AuditRunner
{
    public static Task<AuditResult> RunAsync(string stateDir, params string[] args) =>
        RunRawAsync(new Dictionary<string, string?>(), ["--state-dir", stateDir, .. args]);

    public static Task<AuditResult> RunRawAsync(IReadOnlyDictionary<string, string?> environment, string[] args, CancellationToken ct = default) =>
        RunRawAsync(environment, args, new LockedWriter(), ct);

    /// <summary>With <paramref name="output"/> the caller can watch what a streaming run (--follow) prints.</summary>
    public static async Task<AuditResult> RunRawAsync(IReadOnlyDictionary<string, string?> environment, string[] args, LockedWriter output, CancellationToken ct)
    {
        var error = new StringWriter();
        var console = PlainConsole.On(output);
        var code = await AuditApp.RunAsync(args, new AuditContext(console, error, environment), ct);
        return new AuditResult(code, output.ToString().Replace("\r\n", "\n"), error.ToString().Replace("\r\n", "\n"));
    }
}
