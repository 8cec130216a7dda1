using System.CommandLine;
using System.Text;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm open-in-vm VMNAME FILE / qvm open-in-dvm FILE (as qvm-open-in-vm / qvm-open-in-dvm): FILE goes through
/// qubes.OpenInVM (its last name component on the first line, then its content) and the target opens it with its
/// handler. open-in-dvm calls @dispvm: qubesd creates a disposable from dom0's default_dispvm for the call and kills
/// it when the call ends. The handler's output is passed through; the exit code is the service's.
/// </summary>
public static class OpenInVmCommand
{
    public static Command Create(QvmContext context, bool disposable)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube that opens the file" };
        var file = new Argument<string>("FILE") { Description = "The file to open" };
        var command = disposable
            ? new Command("open-in-dvm", "Open a file in a new disposable, destroyed afterwards (qvm-open-in-dvm)")
            : new Command("open-in-vm", "Open a file in a qube (qvm-open-in-vm)");
        if (!disposable)
            command.Arguments.Add(vm);
        command.Arguments.Add(file);
        command.SetQvmAction(context, async inv =>
        {
            var path = inv.Get(file)!;
            Invocation.RejectOption(path);
            if (!File.Exists(path) || Directory.Exists(path))
                throw new QvmUsageException($"{path}: not a regular file");
            Dom0Qrexec.CheckSocket(inv);
            var target = disposable ? "@dispvm" : (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            await using var content = File.OpenRead(path);
            // Only the last component is sent: the receiver never learns dom0's directories.
            var header = Encoding.UTF8.GetBytes(Path.GetFileName(path).Replace('\n', '_') + "\n");
            return await Dom0Qrexec.CallAsync(inv, target, "qubes.OpenInVM", new PrefixedStream(header, content),
                Dom0Qrexec.Stdout(inv), Dom0Qrexec.Stderr(inv)).ConfigureAwait(false);
        });
        return command;
    }
}
