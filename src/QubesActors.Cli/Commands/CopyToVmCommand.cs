using System.CommandLine;
using System.Diagnostics;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm copy-to-vm / qvm move-to-vm (dom0's qvm-copy-to-vm / qvm-move-to-vm): files and directories go through
/// qubes.Filecopy into the target's ~/QubesIncoming/dom0/. The stream is made by the guest bundle's own sender,
/// qfile-agent (a static C program, run here on the host: one implementation of the format, already refusing
/// symlinks, devices and FIFOs and opening with O_NOFOLLOW). A sender that fails writes no end marker, so the
/// receiver fails too and nothing is reported as copied. move-to-vm removes the local files only after success.
/// </summary>
public static class CopyToVmCommand
{
    public static Command Create(QvmContext context, bool move)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube that receives the files" };
        var files = new Argument<string[]>("FILE") { Description = "Files and directories to copy", Arity = ArgumentArity.OneOrMore };
        var name = move ? "move-to-vm" : "copy-to-vm";
        var command = new Command(name, move
            ? "Move files to a qube's ~/QubesIncoming/dom0/ (qvm-move-to-vm): removed here after a successful copy"
            : "Copy files to a qube's ~/QubesIncoming/dom0/ (qvm-copy-to-vm)");
        command.Arguments.Add(vm);
        command.Arguments.Add(files);
        command.SetQvmAction(context, async inv =>
        {
            var paths = inv.Get(files) ?? [];
            foreach (var path in paths)
            {
                Invocation.RejectOption(path);
                if (!File.Exists(path) && !Directory.Exists(path))
                    throw new QvmUsageException($"{path}: no such file or directory");
            }
            Dom0Qrexec.CheckSocket(inv);
            var target = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var agent = Path.Combine(AppContext.BaseDirectory, "guest", "bin", "qfile-agent");
            if (!File.Exists(agent))
                throw new QvmRuntimeException($"the file sender '{agent}' is missing (it is built with the Sandbox project's guest bundle)");

            var start = new ProcessStartInfo(agent) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var path in paths)
                start.ArgumentList.Add(path);
            using var sender = Process.Start(start) ?? throw new QvmRuntimeException($"cannot run {agent}");
            var senderErrors = sender.StandardError.ReadToEndAsync(CancellationToken.None);
            var stderr = Dom0Qrexec.Stderr(inv);
            int code;
            try
            {
                code = await Dom0Qrexec.CallAsync(inv, target, "qubes.Filecopy", sender.StandardOutput.BaseStream, Stream.Null, stderr).ConfigureAwait(false);
            }
            finally
            {
                // The call ended (or was cancelled): a sender still writing has no reader any more.
                if (!sender.HasExited)
                    sender.Kill();
                await sender.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            if (code == Dom0Qrexec.Refused)
                return code;
            if (sender.ExitCode != 0)
            {
                inv.Error.Write(await senderErrors.ConfigureAwait(false));
                throw new QvmRuntimeException($"copying to {target} failed: the sender stopped (exit {sender.ExitCode}); nothing was removed");
            }
            if (code != 0)
                throw new QvmRuntimeException($"copying to {target} failed: qubes.Filecopy exited with {code}" + (move ? "; nothing was removed" : ""));
            if (move)
                foreach (var path in paths)
                {
                    if (Directory.Exists(path) && !File.GetAttributes(path).HasFlag(FileAttributes.ReparsePoint))
                        Directory.Delete(path, recursive: true);
                    else
                        File.Delete(path);
                }
            return Qvm.ExitOk;
        });
        return command;
    }
}
