using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm run. There is no process execution in qubes yet (the sandbox backend is a later issue), so:
/// <c>qvm run --dispvm[=TPL]</c> creates a disposable (admin.vm.CreateDisposable to TPL, or dom0 = the default
/// disposable template), starts it, prints its name and leaves it running. With a COMMAND the disposable is created
/// and started the same way, then the command is refused (it needs the sandbox backend) and the disposable is killed
/// (qubesd removes an auto_cleanup disposable when it stops) unless <c>--keep</c>: exit 1.
/// <c>qvm run VM COMMAND</c> is refused the same way, without touching the qube.
/// </summary>
public static class RunCommand
{
    public const string NoSandbox = "running commands in qubes needs the sandbox backend, which this qubesd does not have yet";

    public static Command Create(QvmContext context)
    {
        var words = new Argument<string[]>("VMNAME COMMAND") { Description = "Qube and command (with --dispvm: the command only)", Arity = ArgumentArity.ZeroOrMore };
        var dispvm = new Option<string?>("--dispvm") { Description = "Run in a new disposable, from this disposable template (default: dom0's default_dispvm); write --dispvm=TPL", Arity = ArgumentArity.ZeroOrOne };
        var keep = new Option<bool>("--keep") { Description = "Leave the disposable running even when the command cannot run" };
        var output = Qvm.OutputOption();
        var command = new Command("run", "Run a command in a qube or a new disposable (qvm-run)");
        command.Arguments.Add(words);
        command.Options.Add(dispvm);
        command.Options.Add(keep);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var args = inv.Get(words) ?? [];
            var disposable = inv.Parse.GetResult(dispvm) is not null;
            if (!disposable)
            {
                if (args.Length < 2)
                    throw new QvmUsageException("the following arguments are required: VMNAME COMMAND");
                await inv.ResolveAsync(args[0]).ConfigureAwait(false);
                throw new QvmRuntimeException(NoSandbox);
            }
            var template = inv.Get(dispvm) is { Length: > 0 } t ? (await inv.ResolveAsync(t).ConfigureAwait(false)).Name : "dom0";
            var name = (await inv.Api.CallAsync("admin.vm.CreateDisposable", template, ct: inv.Ct).ConfigureAwait(false)).Trim();
            try
            {
                await StartCommand.StartAsync(inv, name).ConfigureAwait(false);
            }
            catch (Exception e) when (e is QubesApiException or OperationCanceledException)
            {
                // qubesd cleans up a disposable whose start failed; after Ctrl-C we do, as nothing will use it.
                await CleanupAsync(inv, name).ConfigureAwait(false);
                throw;
            }
            var cleaned = false;
            if (args.Length > 0 && !inv.Get(keep))
            {
                await CleanupAsync(inv, name).ConfigureAwait(false);
                cleaned = true;
            }
            if (inv.Json(output))
                inv.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("name", name);
                    w.WriteBoolean("running", !cleaned);
                    w.WriteEndObject();
                });
            else
                inv.Out.WriteCells(name);
            if (args.Length > 0)
                throw new QvmRuntimeException(NoSandbox + (cleaned ? $"; disposable {name} was killed" : $"; disposable {name} left running"));
            return Qvm.ExitOk;
        });
        return command;
    }

    private static async Task CleanupAsync(Invocation inv, string name)
    {
        // Not cancellable: a Ctrl-C must not leave the disposable behind.
        var answer = await inv.Api.SendAsync("admin.vm.Kill", name, ct: CancellationToken.None).ConfigureAwait(false);
        if (answer is QubesActors.AdminApi.Wire.AdminResponse.Error { ClassName: not "QubesVMNotStartedError" and not "QubesVMNotFoundError" } error)
            inv.BulkError($"Failed to kill disposable {name}: {error.Message}");
    }
}
