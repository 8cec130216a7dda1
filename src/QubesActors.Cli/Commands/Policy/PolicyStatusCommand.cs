using System.CommandLine;
using System.Text.Json;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// qvm policy status: whether qubesd's policy loads (<c>qubesactors.policy.Status</c>, a JSON object). Exit 0 when it
/// is loaded, 1 when it is not (every call is then denied) — like <c>qvm check</c>, the state is the answer.
/// </summary>
internal static class PolicyStatusCommand
{
    public const string StatusMethod = "qubesactors.policy.Status";

    public static Command Create(QvmContext context)
    {
        var output = Qvm.OutputOption();
        var command = new Command("status", "Show whether qubesd's policy is loaded, or the error that keeps it from loading");
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var text = await inv.Api.CallAsync(StatusMethod, "dom0", ct: inv.Ct).ConfigureAwait(false);
            JsonDocument json;
            try
            {
                json = JsonDocument.Parse(text);
            }
            catch (JsonException e)
            {
                throw new QvmRuntimeException($"unexpected policy status from qubesd: {e.Message}");
            }
            using var _ = json;
            var status = json.RootElement;
            if (status.ValueKind != JsonValueKind.Object || !status.TryGetProperty("loaded", out var loaded) || loaded.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                throw new QvmRuntimeException("unexpected policy status from qubesd: no 'loaded' field");
            if (inv.Json(output))
                inv.WriteJson(w => status.WriteTo(w));
            else
                PolicyOutput.WriteObjectText(inv, status);
            return loaded.GetBoolean() ? Qvm.ExitOk : Qvm.ExitError;
        });
        return command;
    }
}
