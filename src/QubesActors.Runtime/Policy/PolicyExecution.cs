using System.Collections.Immutable;
using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>How the caller wants a decision carried out (the §7 request's optional keys).</summary>
public sealed record PolicyCallOptions(bool JustEvaluate = false, bool AssumeYesForAsk = false, string? RequestedSource = null);

/// <summary>
/// A decision carried out as qrexec-policy-daemon does: <see cref="Final"/> what the caller gets (allow or deny),
/// <see cref="Evaluated"/> what the policy said first, <see cref="Response"/> the exact socket answer,
/// <see cref="LogLines"/> the lines of logger <c>policy</c> (with their level).
/// </summary>
public sealed record PolicyOutcome(PolicyDecision Evaluated, PolicyDecision Final, string Response, ImmutableArray<PolicyLogLine> LogLines)
{
    public bool Allowed => Final.Result == PolicyResult.Allow;
}

public sealed record PolicyLogLine(bool Error, string Text);

/// <summary>
/// The pure part of the policy daemon: evaluation → the caller's answer, after upstream's resolutions
/// (qrexec_policy_exec.py): just_evaluate answers a bare <c>result=allow</c> and denies asks silently;
/// assume_yes_for_ask answers an ask with the requested target; an interactive ask has no GUI to ask here, so it is
/// denied as upstream denies a source without GuiVM.
/// </summary>
public static class PolicyExecution
{
    public const string Deny = "result=deny";
    private static readonly Guid AdminUuid = Guid.Empty;

    /// <param name="policy">The loaded policy, or null when it does not load (<paramref name="loadError"/>).</param>
    public static PolicyOutcome Run(IPolicyEngine engine, ILoadedPolicy? policy, PolicySyntaxException? loadError, PolicyRequest request,
        SystemInfo system, PolicyCallOptions options)
    {
        var log = ImmutableArray.CreateBuilder<PolicyLogLine>();
        if (policy is null)
        {
            var error = engine.ParseError(loadError ?? new PolicySyntaxException("?", 0, "no policy loaded"), request);
            log.Add(new(true, engine.LogLine(request, error)));
            return new(error, error, Deny, log.ToImmutable());
        }
        if (!string.IsNullOrEmpty(options.RequestedSource))
        {
            // Qubes Air relays: only a RemoteVM may be named, and QubesActors has none.
            var refused = Denied(request, system.Domains.ContainsKey(options.RequestedSource)
                ? $"{options.RequestedSource}: requested source is only authorized for RemoteVM"
                : $"unknown requested source qube '{options.RequestedSource}'");
            log.Add(new(false, engine.LogLine(request, refused)));
            return new(refused, refused, Deny, log.ToImmutable());
        }
        var evaluated = policy.Evaluate(request, system);
        var decision = evaluated;
        if (decision.Result == PolicyResult.Ask)
        {
            if (options.AssumeYesForAsk)
                decision = policy.Answer(decision, request, system, decision.RequestedTarget);
            else if (options.JustEvaluate)
                // upstream answers result=deny and logs nothing
                return new(evaluated, decision with { Result = PolicyResult.Deny, Reason = "denied for non-interactive ask" }, Deny, log.ToImmutable());
            else
            {
                log.Add(new(true, $"{request.Service} not allowed from {request.Source}: the resolution was \"ask\", but source domain has no GuiVM"));
                decision = policy.Answer(decision, request, system, null);
            }
        }
        switch (decision.Result)
        {
            case PolicyResult.Allow when options.JustEvaluate:
                return new(evaluated, decision, "result=allow", log.ToImmutable());
            case PolicyResult.Allow:
                // upstream logs "allowed to" before refusing a loopback
                log.Add(new(false, engine.LogLine(request, decision)));
                if (decision.Target == request.Source)
                {
                    var loopback = Denied(request, "loopback qrexec connection not supported", decision);
                    log.Add(new(false, engine.LogLine(request, loopback)));
                    return new(evaluated, loopback, Deny, log.ToImmutable());
                }
                if (AllowResponse(decision, system) is { } response)
                    return new(evaluated, decision, response, log.ToImmutable());
                var unknown = Denied(request, $"target {decision.Target} does not exist", decision);
                log.Add(new(true, engine.LogLine(request, unknown)));
                return new(evaluated, unknown, Deny, log.ToImmutable());
            case PolicyResult.ParseError:
                log.Add(new(true, engine.LogLine(request, decision)));
                return new(evaluated, decision, Deny, log.ToImmutable());
            default:
                log.Add(new(false, engine.LogLine(request, decision)));
                return new(evaluated, decision with { Result = PolicyResult.Deny }, Deny, log.ToImmutable());
        }
    }

    private static PolicyDecision Denied(PolicyRequest request, string reason, PolicyDecision? from = null) =>
        new(PolicyResult.Deny, null, null, Notify: true, Autostart: false, [], null, reason, from?.Matched,
            from?.RequestedTarget ?? (request.RequestedTarget.Length == 0 ? "@default" : request.RequestedTarget));

    public static bool IsDom0(string target) =>
        target is "dom0" or "@adminvm" || target == "uuid:" + AdminUuid.ToString("D");

    /// <summary>The §7 allow answer (lines joined by newline, no trailing newline); null when the target is unknown.</summary>
    public static string? AllowResponse(PolicyDecision decision, SystemInfo system)
    {
        var target = decision.Target ?? "";
        var user = $"user={decision.User ?? "DEFAULT"}";
        var autostart = $"autostart={(decision.Autostart ? "True" : "False")}";
        var requested = $"requested_target={decision.RequestedTarget}";
        if (IsDom0(target))
            return string.Join('\n', user, "result=allow", "target=dom0", autostart, requested);
        if (target.StartsWith("@dispvm:", StringComparison.Ordinal))
            return Find(system, target["@dispvm:".Length..]) is { Uuid: { } tpl }
                ? string.Join('\n', user, "result=allow", $"target={target}", $"target_uuid=@dispvm:uuid:{tpl:D}", autostart, requested)
                : null;
        return Find(system, target) is { Uuid: { } uuid }
            ? string.Join('\n', user, "result=allow", $"target={target}", $"target_uuid=uuid:{uuid:D}", autostart, requested)
            : null;
    }

    /// <summary>A qube by name or by <c>uuid:UUID</c>.</summary>
    public static SystemDomain? Find(SystemInfo system, string token)
    {
        if (system.Domains.TryGetValue(token, out var byName))
            return byName;
        if (token.StartsWith("uuid:", StringComparison.Ordinal) && Guid.TryParse(token[5..], out var uuid))
            return system.Domains.Values.FirstOrDefault(d => d.Uuid == uuid);
        return null;
    }
}
