using System.CommandLine;
using System.Text.Json;
using QubesActors.AdminApi.Wire;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm events [VM]: the admin.Events stream, one line per event (<c>SUBJECT EVENT key=value…</c>, subject <c>-</c>
/// for system events), or one JSON object per line with <c>-o json</c>, until Ctrl-C / cancellation (exit 0).
/// </summary>
public static class EventsCommand
{
    public static Command Create(QvmContext context)
    {
        var vm = new Argument<string?>("VMNAME") { Description = "Only this qube's events (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var only = new Option<string[]>("--event", "-e") { Description = "Only events with this name or name prefix ending in ':' or '*' (repeatable)" };
        var output = Qvm.OutputOption();
        var command = new Command("events", "Stream qubesd events until Ctrl-C");
        command.Arguments.Add(vm);
        command.Options.Add(only);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var dest = inv.Get(vm) is { } name ? (await inv.ResolveAsync(name).ConfigureAwait(false)).Name : "dom0";
            var filters = inv.Get(only) ?? [];
            try
            {
                await foreach (var frame in inv.Api.StreamAsync("admin.Events", dest, "", null, inv.Ct).ConfigureAwait(false))
                {
                    switch (frame)
                    {
                        case AdminResponse.Event e when e.Name == "connection-established":
                            break;
                        case AdminResponse.Event e when filters.Length == 0 || filters.Any(f => Matches(f, e.Name)):
                            Write(inv, e, inv.Json(output));
                            break;
                        case AdminResponse.Error error:
                            throw new QubesApiException(error.ClassName, error.Message);
                    }
                }
            }
            catch (OperationCanceledException) when (inv.Ct.IsCancellationRequested)
            {
                // Ctrl-C is how a stream ends.
                return Qvm.ExitOk;
            }
            if (inv.Ct.IsCancellationRequested)
                return Qvm.ExitOk;
            throw new QvmRuntimeException("qubesd ended the event stream");
        });
        return command;
    }

    private static bool Matches(string filter, string name) =>
        filter.EndsWith('*') ? name.StartsWith(filter[..^1], StringComparison.Ordinal)
        : filter.EndsWith(':') ? name.StartsWith(filter, StringComparison.Ordinal)
        : name == filter;

    public static void Write(Invocation inv, AdminResponse.Event e, bool json)
    {
        if (json)
        {
            inv.WriteJson(w =>
            {
                w.WriteStartObject();
                w.WriteString("subject", e.Subject);
                w.WriteString("event", e.Name);
                w.WriteStartObject("args");
                foreach (var (k, v) in e.Arguments)
                    w.WriteString(k, v);
                w.WriteEndObject();
                w.WriteEndObject();
            }, indented: false);
            return;
        }
        var parts = new List<string> { e.Subject.Length == 0 ? "-" : e.Subject, e.Name };
        parts.AddRange(e.Arguments.Select(a => $"{a.Key}={a.Value}"));
        inv.Out.WriteCells(string.Join(' ', parts));
    }
}
