using System.Globalization;
using System.Text;
using QubesActors.Core.Errors;
using QubesActors.Runtime.Policy;
using static QubesActors.AdminApi.Methods.Handlers;
using static QubesActors.Runtime.Policy.PolicyProtocol;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// The policy Admin API (docs/policy-runtime.md): <c>policy.{List,Get,Replace,Remove}</c> on the runtime directory's
/// <c>NAME.policy</c> files and <c>policy.include.*</c> on its <c>include/</c> files, with upstream's tokens; plus
/// <c>policy.Status</c> (a QubesActors addition: whether the policy loads). Every call goes to the policy actor, which
/// checks, validates, writes and swaps in one step.
/// </summary>
public static class PolicyMethods
{
    public static IEnumerable<AdminMethod> All =>
    [
        .. For("policy", PolicyFileKind.Policy),
        .. For("policy.include", PolicyFileKind.Include),
        Read("policy.Status", DestinationKind.AdminVm, Status, scope: MethodScope.Global),
        new("policy.Evaluate", MethodScope.Global, MethodAccess.Read, DestinationKind.AdminVm, Presence.None, Presence.Required, Evaluate),
    ];

    /// <summary>
    /// A QubesActors addition for <c>qvm policy eval</c>: payload <c>key=value</c> lines <c>service_and_arg</c>,
    /// <c>source</c>, <c>intended_target</c> (may be empty) and optionally <c>ask_answer=deny|allow:TARGET</c>; answers the
    /// decision as one JSON object (<see cref="Core.Policy.PolicyDecisionJson"/>). Nothing is carried out or journaled.
    /// </summary>
    private static async Task<AdminReply> Evaluate(AdminCall call, CancellationToken ct)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var untrustedLine in call.UntrustedPayloadAscii().Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = untrustedLine.IndexOf('=');
            var key = eq < 0 ? untrustedLine : untrustedLine[..eq];
            if (eq < 0 || key is not ("service_and_arg" or "source" or "intended_target" or "ask_answer") || !fields.TryAdd(key, untrustedLine[(eq + 1)..]))
                throw new ProtocolError($"invalid policy.Evaluate field: '{key}'");
        }
        if (!fields.TryGetValue("service_and_arg", out var serviceAndArg) || serviceAndArg.Length == 0 || !fields.TryGetValue("source", out var source))
            throw new ProtocolError("policy.Evaluate needs service_and_arg and source");
        var answer = fields.GetValueOrDefault("ask_answer");
        if (answer is not (null or "deny") && !(answer.StartsWith("allow:", StringComparison.Ordinal) && answer.Length > "allow:".Length))
            throw new ProtocolError("ask_answer must be deny or allow:TARGET");
        var request = Core.Policy.PolicyRequest.Of(serviceAndArg, source, fields.GetValueOrDefault("intended_target", ""));
        var decision = await Policy(call).DryRunAsync(new DryRunPolicy(request, answer), ct).ConfigureAwait(false);
        return new AdminReply.Ok(Core.Policy.PolicyDecisionJson.ToJson(decision));
    }

    private static IEnumerable<AdminMethod> For(string prefix, PolicyFileKind kind) =>
    [
        Read($"{prefix}.List", DestinationKind.AdminVm, (call, ct) => Files(call, new ListPolicyFiles(kind), ct), scope: MethodScope.Global),
        Read($"{prefix}.Get", DestinationKind.AdminVm, (call, ct) => Files(call, new GetPolicyFile(kind, call.Arg), ct),
            arg: Presence.Required, scope: MethodScope.Global),
        Write($"{prefix}.Replace", DestinationKind.AdminVm, (call, ct) =>
        {
            var (token, content) = PolicyFiles.SplitPayload(Utf8Payload(call));
            return Files(call, new ChangePolicyFile(new PolicyFileChange(kind, call.Arg, token, content), call.Method.Name, call.Caller.Describe()), ct);
        }, arg: Presence.Required, payload: Presence.Required, scope: MethodScope.Global),
        Write($"{prefix}.Remove", DestinationKind.AdminVm, (call, ct) =>
            Files(call, new ChangePolicyFile(new PolicyFileChange(kind, call.Arg, call.UntrustedPayloadAscii(), null), call.Method.Name, call.Caller.Describe()), ct),
            arg: Presence.Required, payload: Presence.Required, scope: MethodScope.Global),
    ];

    private static IPolicyGateway Policy(AdminCall call) =>
        call.Qubes.Policy ?? throw new QubesError("this qubesd serves no qrexec policy");

    private static async Task<AdminReply> Files(AdminCall call, object message, CancellationToken ct)
    {
        var reply = await Policy(call).FilesAsync(message, ct).ConfigureAwait(false);
        return reply.Error is { } error ? new AdminReply.Failed(error) : new AdminReply.Ok(reply.Output);
    }

    /// <summary><c>status=ok</c> or <c>status=error</c> and <c>error=FILE:LINE: MESSAGE</c>, then <c>since=</c> (ISO 8601, UTC).</summary>
    private static async Task<AdminReply> Status(AdminCall call, CancellationToken ct)
    {
        var status = await Policy(call).StatusAsync(ct).ConfigureAwait(false);
        var text = new StringBuilder();
        text.Append(status.Loaded ? "status=ok\n" : "status=error\n");
        if (status.Error is { } error)
            text.Append("error=").Append(error.ReplaceLineEndings(" ")).Append('\n');
        text.Append("since=").Append(status.Since.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)).Append('\n');
        return new AdminReply.Ok(text.ToString());
    }

    /// <summary>Policy text is UTF-8 (upstream decodes it strictly).</summary>
    private static string Utf8Payload(AdminCall call)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(call.Request.UntrustedPayload.Span);
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolError("policy is not valid UTF-8");
        }
    }
}

/// <summary>
/// The shipped admin policy, generated from the method table as upstream generates its own: one
/// <c>!include-service METHOD * include/admin-{local|global}-{ro|rwx}</c> line per call (policy.* calls go to
/// <c>include/admin-policy-{ro|rwx}</c>). config/policy.seed holds the result; a test keeps it in step with the table.
/// </summary>
public static class AdminPolicyFiles
{
    public static string AdminDefault(MethodTable table) => Generate(table.Methods.Where(m => !m.Name.StartsWith("policy.", StringComparison.Ordinal)),
        """
        ## Generated from qubesd's method table (AdminPolicyFiles); edit the include files, not this file, or add a
        ## file with a lower number (e.g. 30-admin.policy) through policy.Replace.
        ##
        ## Admin API calls from qubes: each call includes one of
        ##   include/admin-local-ro, include/admin-local-rwx (calls about one qube),
        ##   include/admin-global-ro, include/admin-global-rwx (system-wide calls),
        ## which are empty by default: every admin.* call from a qube is denied. Calls from dom0 never reach the policy.

        """,
        m => $"include/admin-{(m.Scope == MethodScope.Global ? "global" : "local")}-{(m.Access == MethodAccess.Read ? "ro" : "rwx")}");

    public static string PolicyAdminDefault(MethodTable table) => Generate(table.Methods.Where(m => m.Name.StartsWith("policy.", StringComparison.Ordinal)),
        """
        ## Generated from qubesd's method table (AdminPolicyFiles).
        ##
        ## The policy Admin API: these calls view and change the qrexec policy, which gives the caller full control
        ## of the system. Allow them only to trusted qubes, in include/admin-policy-ro / include/admin-policy-rwx.

        """,
        m => $"include/admin-policy-{(m.Access == MethodAccess.Read ? "ro" : "rwx")}");

    private static string Generate(IEnumerable<AdminMethod> methods, string header, Func<AdminMethod, string> include)
    {
        var text = new StringBuilder(header.ReplaceLineEndings("\n")).Append('\n');
        var rows = methods.ToList();
        var width = rows.Max(m => m.Name.Length);
        foreach (var m in rows)
            text.Append("!include-service ").Append(m.Name.PadRight(width)).Append("  *  ").Append(include(m)).Append('\n');
        return text.ToString();
    }
}
