using System.Collections.Immutable;
using System.Text.Json;
using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Policy;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// A <see cref="PolicyDecision"/> as <c>qvm policy eval</c> prints it: aligned <c>KEY  VALUE</c> lines, or one JSON
/// object. The JSON object is also what qubesd answers to <c>policy.Evaluate</c>, so it is read back here.
/// </summary>
internal static class PolicyOutput
{
    public static string ResultName(PolicyResult result) => PolicyDecisionJson.ResultName(result);

    public static void WriteText(Invocation inv, PolicyDecision d)
    {
        static string Or(string? value) => string.IsNullOrEmpty(value) ? "-" : value;
        static string YesNo(bool value) => value ? "yes" : "no";
        // Policy text (reasons, file names, qube names) is untrusted: plain cells, sanitised when written.
        AlignedTable.Write(inv.Out,
        [
            ["result", ResultName(d.Result)],
            ["target", Or(d.Target)],
            // As the policy daemon says it: no user= means the target's default user.
            ["user", d.User ?? "DEFAULT"],
            ["notify", YesNo(d.Notify)],
            ["autostart", YesNo(d.Autostart)],
            ["targets_for_ask", d.TargetsForAsk.IsDefaultOrEmpty ? "-" : string.Join(' ', d.TargetsForAsk)],
            ["default_target", Or(d.DefaultTarget)],
            ["reason", Or(d.Reason)],
            ["matched", d.Matched is null ? "-" : d.Matched.ToString()],
            ["requested_target", Or(d.RequestedTarget)],
        ]);
    }

    public static void WriteJson(Utf8JsonWriter w, PolicyDecision d) => PolicyDecisionJson.Write(w, d);

    /// <summary>The daemon's answer to policy.Evaluate: the object <see cref="WriteJson"/> writes.</summary>
    public static PolicyDecision ReadJson(string text)
    {
        try
        {
            return PolicyDecisionJson.Parse(text);
        }
        catch (FormatException e)
        {
            throw new QvmRuntimeException($"unexpected policy decision from qubesd: {Terminal.Sanitize(e.Message)}");
        }
    }
}
