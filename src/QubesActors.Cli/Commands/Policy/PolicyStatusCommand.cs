using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// qvm policy status: whether qubesd's policy loads (<c>policy.Status</c>: <c>status=ok|error</c>, <c>error=…</c>,
/// <c>since=…</c> lines). Exit 0 when it is loaded, 1 when it is not (every call is then denied) — like
/// <c>qvm check</c>, the state is the answer.
/// </summary>
internal static class PolicyStatusCommand
{
    public const string StatusMethod = "policy.Status";

    public static Command Create(QvmContext context)
    {
        var output = Qvm.OutputOption();
        var command = new Command("status", "Show whether qubesd's policy is loaded, or the error that keeps it from loading");
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var text = await inv.Api.CallAsync(StatusMethod, "dom0", ct: inv.Ct).ConfigureAwait(false);
            // key=value lines in the daemon's order; later fields are kept whatever they are.
            var fields = new List<(string Key, string Value)>();
            foreach (var line in QubesApi.Lines(text))
            {
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                    fields.Add((line[..eq], line[(eq + 1)..]));
            }
            var status = fields.FirstOrDefault(f => f.Key == "status").Value;
            if (status is not ("ok" or "error"))
                throw new QvmRuntimeException($"unexpected policy status from qubesd: '{Terminal.Sanitize(text)}'");
            if (inv.Json(output))
                inv.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("loaded", status == "ok");
                    w.WriteString("error", fields.FirstOrDefault(f => f.Key == "error").Value);
                    foreach (var (key, value) in fields.Where(f => f.Key is not ("status" or "error")))
                        w.WriteString(key, value);
                    w.WriteEndObject();
                });
            else
                AlignedTable.Write(inv.Out, [.. fields.Select(f => (IReadOnlyList<Cell>)[f.Key, f.Value])]);
            return status == "ok" ? Qvm.ExitOk : Qvm.ExitError;
        });
        return command;
    }
}
