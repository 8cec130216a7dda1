using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>qvm kill, pause, unpause: bulk tools over names or <c>--all</c>; per-qube failures as <c>Error: …</c>, exit 1 if any.</summary>
public static class PowerCommands
{
    public static Command Kill(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var command = new Command("kill", "Kill qubes without a shutdown (qvm-kill)");
        selection.AddTo(command);
        command.SetQvmAction(context, async inv =>
        {
            var failed = false;
            foreach (var qube in await selection.ResolveAsync(inv).ConfigureAwait(false))
            {
                try
                {
                    await inv.Api.CallAsync("admin.vm.Kill", qube.Name, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e) when (e.ClassName == "QubesVMNotStartedError")
                {
                    // Already halted: what a kill wants (qvm-kill ignores it too).
                }
                catch (QubesApiException e)
                {
                    inv.BulkError($"Failed to kill: {qube.Name}: {e.Message}");
                    failed = true;
                }
            }
            return failed ? Qvm.ExitError : Qvm.ExitOk;
        });
        return command;
    }

    public static Command Pause(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var suspend = new Option<bool>("--suspend", "-S") { Description = "Suspend (S3) instead of pausing; paused if the qube cannot suspend" };
        var command = new Command("pause", "Pause qubes (qvm-pause)");
        selection.AddTo(command);
        command.Options.Add(suspend);
        command.SetQvmAction(context, async inv =>
        {
            var method = inv.Get(suspend) ? "admin.vm.Suspend" : "admin.vm.Pause";
            var failed = false;
            foreach (var qube in await selection.ResolveAsync(inv).ConfigureAwait(false))
            {
                try
                {
                    await inv.Api.CallAsync(method, qube.Name, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e)
                {
                    inv.BulkError($"Failed to {(inv.Get(suspend) ? "suspend" : "pause")}: {qube.Name}: {e.Message}");
                    failed = true;
                }
            }
            return failed ? Qvm.ExitError : Qvm.ExitOk;
        });
        return command;
    }

    public static Command Unpause(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var command = new Command("unpause", "Unpause paused qubes, resume suspended ones (qvm-unpause)");
        selection.AddTo(command);
        command.SetQvmAction(context, async inv =>
        {
            var failed = false;
            foreach (var qube in await selection.ResolveAsync(inv).ConfigureAwait(false))
            {
                try
                {
                    var method = qube.State == "Suspended" ? "admin.vm.Resume" : "admin.vm.Unpause";
                    await inv.Api.CallAsync(method, qube.Name, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e)
                {
                    inv.BulkError($"Failed to unpause: {qube.Name}: {e.Message}");
                    failed = true;
                }
            }
            return failed ? Qvm.ExitError : Qvm.ExitOk;
        });
        return command;
    }
}
