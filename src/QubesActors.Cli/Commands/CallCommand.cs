using System.CommandLine;
using QubesActors.AdminApi.Wire;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm call METHOD DEST [ARG] [--payload TEXT | --payload-file F]: any Admin API call sent verbatim (the actor
/// message level). Ok content is printed as is (control characters escaped on a terminal), an exception as
/// <c>ClassName: message</c> on stderr with exit 1, event frames line by line until the stream ends or Ctrl-C.
/// </summary>
public static class CallCommand
{
    public static Command Create(QvmContext context)
    {
        var method = new Argument<string>("METHOD") { Description = "e.g. admin.vm.List" };
        var dest = new Argument<string>("DEST") { Description = "Destination qube (dom0 for global calls)" };
        var arg = new Argument<string?>("ARG") { Description = "The call's argument", Arity = ArgumentArity.ZeroOrOne };
        var payload = new Option<string?>("--payload") { Description = "Payload text" };
        var payloadFile = new Option<string?>("--payload-file") { Description = "Payload read from a file" };
        var output = Qvm.OutputOption();
        var command = new Command("call", "Send one Admin API call verbatim and print the answer");
        command.Arguments.Add(method);
        command.Arguments.Add(dest);
        command.Arguments.Add(arg);
        command.Options.Add(payload);
        command.Options.Add(payloadFile);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            if (inv.Get(payload) is not null && inv.Get(payloadFile) is not null)
                throw new QvmUsageException("--payload and --payload-file are mutually exclusive");
            var body = inv.Get(payload);
            if (inv.Get(payloadFile) is { } file)
            {
                try
                {
                    body = await File.ReadAllTextAsync(file, inv.Ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new QvmRuntimeException($"cannot read payload file: {e.Message}");
                }
            }
            var json = inv.Json(output);
            try
            {
                await foreach (var frame in inv.Api.StreamAsync(inv.Get(method)!, inv.Get(dest)!, inv.Get(arg) ?? "", body, inv.Ct).ConfigureAwait(false))
                {
                    switch (frame)
                    {
                        case AdminResponse.Event e:
                            EventsCommand.Write(inv, e, json);
                            break;
                        case AdminResponse.Ok ok when json:
                            inv.WriteJson(w =>
                            {
                                w.WriteStartObject();
                                w.WriteString("ok", ok.Text);
                                w.WriteEndObject();
                            });
                            return Qvm.ExitOk;
                        case AdminResponse.Ok ok:
                            WriteRaw(inv, ok.Text);
                            return Qvm.ExitOk;
                        case AdminResponse.Error error when json:
                            inv.WriteJson(w =>
                            {
                                w.WriteStartObject();
                                w.WriteString("exception", error.ClassName);
                                w.WriteString("message", error.Message);
                                w.WriteEndObject();
                            });
                            return Qvm.ExitError;
                        case AdminResponse.Error error:
                            inv.Error.ErrorLine($"{error.ClassName}: {error.Message}");
                            return Qvm.ExitError;
                    }
                }
            }
            catch (OperationCanceledException) when (inv.Ct.IsCancellationRequested)
            {
                return Qvm.ExitOk;
            }
            return Qvm.ExitOk;
        });
        return command;
    }

    /// <summary>Redirected output gets the exact bytes; a terminal gets control characters escaped (newlines and tabs kept).</summary>
    private static void WriteRaw(Invocation inv, string text)
    {
        if (!inv.Interactive)
        {
            inv.Out.Profile.Out.Writer.Write(text);
            inv.Out.Profile.Out.Writer.Flush();
            return;
        }
        inv.Out.WriteText(text.EndsWith('\n') || text.Length == 0 ? text : text + "\n");
    }
}
