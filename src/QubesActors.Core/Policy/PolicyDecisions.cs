namespace QubesActors.Core.Policy;

/// <summary>Decisions built outside the evaluator, and the §7 log line.</summary>
public static class PolicyDecisions
{
    internal static PolicyDecision Deny(string reason, bool notify, PolicyLocation? matched, string requestedTarget) =>
        new(PolicyResult.Deny, null, null, notify, false, [], null, reason, matched, requestedTarget);

    /// <summary>The policy does not load: the call is denied, reason <c>file:line: message</c>, no notification.</summary>
    public static PolicyDecision ParseError(PolicySyntaxException e, PolicyRequest r) =>
        new(PolicyResult.ParseError, null, null, false, false, [], null, e.Message, null,
            r.RequestedTarget.Length == 0 ? "@default" : r.RequestedTarget);

    /// <summary>
    /// What executing an allow adds (upstream AllowResolution.execute): a call to itself is refused
    /// (<c>loopback qrexec connection not supported</c>, notify yes). Other decisions are returned unchanged.
    /// </summary>
    public static PolicyDecision ForExecution(PolicyDecision d, PolicyRequest r) =>
        d.Result == PolicyResult.Allow && d.Target == r.Source
            ? Deny("loopback qrexec connection not supported", notify: true, d.Matched, d.RequestedTarget)
            : d;

    /// <summary>An ask that cannot be put to a user (<c>denied for non-interactive ask</c>, notify yes).</summary>
    public static PolicyDecision NonInteractiveAsk(PolicyDecision d) =>
        d.Result == PolicyResult.Ask
            ? Deny("denied for non-interactive ask", notify: true, d.Matched, d.RequestedTarget)
            : d;

    /// <summary>
    /// The §7 journal line. Allowed: service+argument, normalised target, resolved target. Denied / error: the call as
    /// received (a bare <c>+</c> argument is printed as no argument) and the target as requested. An ask (upstream logs
    /// nothing until the answer) gives <c>… ask: t1, t2</c>.
    /// </summary>
    public static string LogLine(PolicyRequest r, PolicyDecision d)
    {
        var received = r.Argument == "+" ? r.Service : r.Service + r.Argument;
        return d.Result switch
        {
            PolicyResult.Allow =>
                $"qrexec: {r.Service}{r.Argument}: {r.Source} -> {d.RequestedTarget}: allowed to {d.Target}",
            PolicyResult.Ask =>
                $"qrexec: {r.Service}{r.Argument}: {r.Source} -> {d.RequestedTarget}: ask: {string.Join(", ", d.TargetsForAsk)}",
            PolicyResult.ParseError =>
                $"qrexec: {received}: {r.Source} -> {r.RequestedTarget}: error loading policy: {d.Reason}",
            _ => $"qrexec: {received}: {r.Source} -> {r.RequestedTarget}: denied: {d.Reason}",
        };
    }
}
