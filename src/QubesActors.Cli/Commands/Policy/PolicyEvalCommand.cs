using System.CommandLine;
using System.Text;
using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Policy;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// qvm policy eval SERVICE[+ARG] SOURCE TARGET: the decision for one call. With <c>--policy-dir</c> and
/// <c>--system</c> it is computed here, without a daemon; otherwise qubesd evaluates it against its loaded policy and
/// live qubes (<c>policy.Evaluate</c>, a QubesActors addition). Exit 0 whenever a decision is printed, deny and parse-error included.
/// </summary>
internal static class PolicyEvalCommand
{
    public const string EvaluateMethod = "policy.Evaluate";

    public static Command Create(QvmContext context)
    {
        var service = new Argument<string>("SERVICE[+ARG]") { Description = "The qrexec service and argument, e.g. qubes.Filecopy or qubes.Gpg+work" };
        var source = new Argument<string>("SOURCE") { Description = "The calling qube" };
        var target = new Argument<string>("TARGET") { Description = "The target as the caller names it ('' or @default = none; @dispvm, @dispvm:NAME, @adminvm, uuid:...)" };
        var policyDir = new Option<string[]>("--policy-dir") { Description = "Evaluate offline with the .policy files of this directory (repeatable: the first wins for a name)", AllowMultipleArgumentsPerToken = false };
        var system = new Option<string?>("--system") { Description = "Evaluate offline with these qubes (internal.GetSystemInfo JSON)" };
        var askAnswer = new Option<string?>("--ask-answer") { Description = "Follow an ask through: the user's answer, deny or allow:TARGET" };
        var json = new Option<bool>("--json") { Description = "Same as -o json" };
        var output = Qvm.OutputOption();
        var command = new Command("eval", "Show the policy decision for a qrexec call");
        command.Arguments.Add(service);
        command.Arguments.Add(source);
        command.Arguments.Add(target);
        command.Options.Add(policyDir);
        command.Options.Add(system);
        command.Options.Add(askAnswer);
        command.Options.Add(json);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var dirs = inv.Get(policyDir) ?? [];
            var systemFile = inv.Get(system);
            if ((dirs.Length > 0) != (systemFile is not null))
                throw new QvmUsageException("--policy-dir and --system go together (offline evaluation); without both qubesd evaluates");
            var answer = inv.Get(askAnswer);
            if (answer is not null && answer != "deny" && !(answer.StartsWith("allow:", StringComparison.Ordinal) && answer.Length > "allow:".Length))
                throw new QvmUsageException($"--ask-answer must be deny or allow:TARGET, not '{answer}'");
            var serviceAndArg = inv.Get(service)!;
            if (serviceAndArg.Length == 0 || serviceAndArg.StartsWith('+'))
                throw new QvmUsageException($"invalid SERVICE[+ARG]: '{serviceAndArg}'");
            var request = PolicyRequest.Of(serviceAndArg, inv.Get(source)!, inv.Get(target)!);
            var decision = dirs.Length > 0
                ? await EvaluateOfflineAsync(inv, dirs, systemFile!, request, answer).ConfigureAwait(false)
                : await EvaluateOnlineAsync(inv, serviceAndArg, request, answer).ConfigureAwait(false);
            if (inv.Get(json) || inv.Json(output))
                inv.WriteJson(w => PolicyOutput.WriteJson(w, decision));
            else
                PolicyOutput.WriteText(inv, decision);
            return Qvm.ExitOk;
        });
        return command;
    }

    /// <summary>
    /// The payload is the policy daemon's request format (§7: <c>key=value</c> lines) plus <c>ask_answer</c>; the
    /// answer is the <c>--json</c> object.
    /// </summary>
    private static async Task<PolicyDecision> EvaluateOnlineAsync(Invocation inv, string serviceAndArg, PolicyRequest request, string? answer)
    {
        foreach (var (name, value) in new[] { ("SERVICE[+ARG]", serviceAndArg), ("SOURCE", request.Source), ("TARGET", request.RequestedTarget), ("--ask-answer", answer ?? "") })
            if (value.Contains('\n', StringComparison.Ordinal))
                throw new QvmUsageException($"{name} cannot contain a newline");
        var payload = new StringBuilder()
            .Append("service_and_arg=").Append(serviceAndArg).Append('\n')
            .Append("source=").Append(request.Source).Append('\n')
            .Append("intended_target=").Append(request.RequestedTarget).Append('\n');
        if (answer is not null)
            payload.Append("ask_answer=").Append(answer).Append('\n');
        var text = await inv.Api.CallAsync(EvaluateMethod, "dom0", "", payload.ToString(), inv.Ct).ConfigureAwait(false);
        return PolicyOutput.ReadJson(text);
    }

    /// <summary>
    /// As the daemon decides: a policy that does not load (syntax error, unreadable file) is a parse-error decision;
    /// only a --system file that cannot be read fails the command.
    /// </summary>
    private static async Task<PolicyDecision> EvaluateOfflineAsync(Invocation inv, string[] dirs, string systemFile, PolicyRequest request, string? answer)
    {
        foreach (var dir in dirs)
            if (!Directory.Exists(dir))
                throw new QvmUsageException($"no such directory: '{dir}'");
        SystemInfo system;
        try
        {
            system = SystemInfoJson.Parse(await File.ReadAllTextAsync(systemFile, inv.Ct).ConfigureAwait(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            throw new QvmRuntimeException($"cannot read --system file '{systemFile}': {e.Message}");
        }
        CompiledPolicy policy;
        try
        {
            policy = CompiledPolicy.LoadDirectories(dirs);
        }
        catch (PolicySyntaxException e)
        {
            return PolicyDecisions.ParseError(e, request);
        }
        var decision = policy.Evaluate(request, system);
        return answer is null ? decision : policy.Answer(decision, request, system, answer == "deny" ? null : answer["allow:".Length..]);
    }
}
