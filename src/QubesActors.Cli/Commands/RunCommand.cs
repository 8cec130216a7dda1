using System.CommandLine;
using System.Text;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm run (qvm-run from dom0): COMMAND runs in the qube through qubes.VMShell (the command line, then "; exit", on
/// the service's stdin), through qubes.VMExec when it has several words or --no-shell, or COMMAND is a service
/// (--service). The call goes through qubesd's dom0 qrexec socket. A halted qube is started first (and a paused one
/// unpaused) unless --no-autostart, which skips it: "Qube 'X' not started", exit 1. --dispvm calls @dispvm[:TPL]:
/// qubesd creates the disposable for the call and kills it when the call ends. With --pass-io stdin, stdout and
/// stderr are connected; without it the output is discarded. Either way the exit code is the command's (qvm-run
/// waits too), 126 when qubesd refuses the call.
/// </summary>
public static class RunCommand
{
    public static Command Create(QvmContext context)
    {
        var words = new Argument<string[]>("VMNAME COMMAND") { Description = "Qube and command (with --dispvm: the command only); write -- before a command with options", Arity = ArgumentArity.ZeroOrMore };
        var dispvm = new Option<string?>("--dispvm") { Description = "Run in a new disposable, from this disposable template (default: dom0's default_dispvm); write --dispvm=TPL", Arity = ArgumentArity.ZeroOrOne };
        var passIo = new Option<bool>("--pass-io", "-p") { Description = "Connect stdin, stdout and stderr to the command" };
        var noAutostart = new Option<bool>("--no-autostart", "--no-auto", "-n") { Description = "Do not start (or unpause) the qube: fail if it is not running" };
        var autostart = new Option<bool>("--autostart", "--auto", "-a") { Description = "Ignored: this is the default" };
        var user = new Option<string?>("--user", "-u") { Description = "Accepted for compatibility: our qubes run services as root (without capabilities)" };
        var service = new Option<bool>("--service") { Description = "COMMAND is a qrexec service (SERVICE[+ARG]) to call directly" };
        var noShell = new Option<bool>("--no-shell") { Description = "COMMAND is an executable, not a shell command line (qubes.VMExec)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Do not print what is run or failed" };
        var filter = new Option<bool>("--filter-escape-chars") { Description = "Replace control bytes in the output (default when stdout is a terminal)" };
        var noFilter = new Option<bool>("--no-filter-escape-chars") { Description = "Pass the output unfiltered; DANGEROUS on a terminal" };
        var gui = new Option<bool>("--gui") { Description = "Ignored: qubes have no GUI here" };
        var noGui = new Option<bool>("--no-gui", "--nogui") { Description = "Ignored: qubes have no GUI here" };
        var command = new Command("run", "Run a command in a qube or a new disposable (qvm-run)");
        command.Arguments.Add(words);
        foreach (var option in new Option[] { dispvm, passIo, noAutostart, autostart, user, service, noShell, quiet, filter, noFilter, gui, noGui })
            command.Options.Add(option);
        command.SetQvmAction(context, async inv =>
        {
            var args = inv.Get(words) ?? [];
            var disposable = inv.Parse.GetResult(dispvm) is not null;
            var pass = inv.Get(passIo);
            // As qvm-run: -q and --pass-io each lower the verbosity; messages only above zero.
            var verbose = !inv.Get(quiet) && !pass;
            if (inv.Get(service) && inv.Get(noShell))
                throw new QvmUsageException("--no-shell does not apply to --service");
            if (disposable && args.Length == 0)
                return await RunDisposableWithoutCommandAsync(inv, dispvm).ConfigureAwait(false);
            if (args.Length < (disposable ? 1 : 2))
                throw new QvmUsageException($"the following arguments are required: {(disposable ? "COMMAND" : "VMNAME COMMAND")}");
            // Before anything is started: without the socket no command can run.
            Dom0Qrexec.CheckSocket(inv);

            string target;
            if (disposable)
            {
                var template = inv.Get(dispvm) is { Length: > 0 } t ? (await inv.ResolveAsync(t).ConfigureAwait(false)).Name : null;
                target = template is null ? "@dispvm" : "@dispvm:" + template;
            }
            else
            {
                var qube = await inv.ResolveAsync(args[0]).ConfigureAwait(false);
                target = qube.Name;
                if (await PrepareAsync(inv, qube, !inv.Get(noAutostart), verbose).ConfigureAwait(false) is { } refused)
                    return refused;
            }
            var commandWords = disposable ? args : args[1..];
            string serviceName;
            byte[] input = [];
            if (inv.Get(service))
            {
                if (commandWords.Length > 1)
                    throw new QvmUsageException("--service takes one COMMAND: the service name (SERVICE[+ARG])");
                serviceName = commandWords[0];
            }
            else if (commandWords.Length > 1 || inv.Get(noShell))
            {
                serviceName = "qubes.VMExec+" + EncodeForVmExec(commandWords);
            }
            else if (pass && inv.Context.StandardInput is not null && ShellThroughVmExec(commandWords[0]) is { } exec)
            {
                // qubes.VMShell's shell reads its script from the same pipe as the command's stdin, and the guest's
                // sh (busybox ash, dash) reads it in blocks: input sent right after the command line would be eaten
                // by the shell. So with forwarded input the command line is an argument: sh -c CMD via qubes.VMExec.
                serviceName = exec;
            }
            else
            {
                serviceName = "qubes.VMShell";
                // qvm-run's input for a shell: the command, then "; exit" so nothing after it is run as commands.
                input = Encoding.UTF8.GetBytes(commandWords[0] + "; exit\n");
            }

            if (verbose)
                inv.Error.ErrorLine($"Running '{string.Join(' ', commandWords)}' on {target}");
            int code;
            if (pass)
            {
                var stdin = new PrefixedStream(input, inv.Context.StandardInput is { } raw ? new AbandonableStream(raw) : null);
                var filtered = inv.Get(noFilter) ? false : inv.Get(filter) || inv.Context.OutputIsTerminal;
                var stdout = Dom0Qrexec.Stdout(inv);
                code = await Dom0Qrexec.CallAsync(inv, target, serviceName, stdin,
                    filtered ? new EscapeFilterStream(stdout) : stdout, Dom0Qrexec.Stderr(inv)).ConfigureAwait(false);
            }
            else
            {
                // Output discarded, as qvm-run without --pass-io; a refusal is still shown.
                var stderr = new LastWriteStream();
                code = await Dom0Qrexec.CallAsync(inv, target, serviceName, new PrefixedStream(input, null), Stream.Null, stderr).ConfigureAwait(false);
                if (code == Dom0Qrexec.Refused)
                    Dom0Qrexec.ReportRefusal(inv, stderr);
                else if (code != 0 && verbose)
                    inv.Error.ErrorLine($"{target}: command failed with code: {code}");
            }
            return code;
        });
        return command;
    }

    /// <summary>
    /// Autostart as qvm-run: a halted qube is started (with the netvm chain's progress), a paused one unpaused; with
    /// --no-autostart either is skipped with exit 1. Returns the exit code when the command is not to run.
    /// </summary>
    private static async Task<int?> PrepareAsync(Invocation inv, QubeEntry qube, bool autostart, bool verbose)
    {
        switch (qube.State)
        {
            case "Halted" or "Crashed" or "Dying":
                if (!autostart)
                {
                    if (verbose)
                        inv.Error.ErrorLine($"Qube '{qube.Name}' not started");
                    return Qvm.ExitError;
                }
                try
                {
                    await StartCommand.StartAsync(inv, qube.Name).ConfigureAwait(false);
                }
                catch (QubesApiException e)
                {
                    throw new QvmRuntimeException($"Starting qube failed: {qube.Name}: {e.Message}");
                }
                return null;
            case "Paused" or "Suspended":
                if (!autostart)
                {
                    if (verbose)
                        inv.Error.ErrorLine($"Qube '{qube.Name}' is paused");
                    return Qvm.ExitError;
                }
                try
                {
                    await inv.Api.CallAsync("admin.vm.Unpause", qube.Name, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException)
                {
                    if (verbose)
                        inv.Error.ErrorLine($"Qube '{qube.Name}' cannot be unpaused");
                    return Qvm.ExitError;
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>qubes.VMExec+ENCODED for <c>/bin/sh -c COMMAND</c>, or null when it is longer than a qrexec request may be.</summary>
    private static string? ShellThroughVmExec(string commandLine)
    {
        var service = "qubes.VMExec+" + EncodeForVmExec(["/bin/sh", "-c", commandLine]);
        return service.Length <= MaxServiceAndArgument ? service : null;
    }

    /// <summary>The qrexec protocol's bound on SERVICE+ARG (docs/qrexec.md).</summary>
    private const int MaxServiceAndArgument = 1024;

    /// <summary>
    /// Qubes' encoding of a qubes.VMExec argument: words joined by '+', each byte of a word kept when it is
    /// [A-Za-z0-9_.], '-' written "--", anything else "-HH" (upper-case hex).
    /// </summary>
    public static string EncodeForVmExec(IEnumerable<string> words)
    {
        var sb = new StringBuilder();
        foreach (var word in words)
        {
            if (word.Length == 0)
                throw new QvmUsageException("qubes.VMExec cannot carry an empty argument; use a shell command line instead");
            if (sb.Length > 0)
                sb.Append('+');
            foreach (var b in Encoding.UTF8.GetBytes(word))
            {
                if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'_' or (byte)'.')
                    sb.Append((char)b);
                else if (b == (byte)'-')
                    sb.Append("--");
                else
                    sb.Append('-').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// <c>qvm run --dispvm[=TPL]</c> without a command (a QubesActors addition): the disposable is created, started
    /// and left running; its name is printed. qubesd removes it when it stops (auto_cleanup).
    /// </summary>
    private static async Task<int> RunDisposableWithoutCommandAsync(Invocation inv, Option<string?> dispvm)
    {
        var template = inv.Get(dispvm) is { Length: > 0 } t ? (await inv.ResolveAsync(t).ConfigureAwait(false)).Name : "dom0";
        var name = (await inv.Api.CallAsync("admin.vm.CreateDisposable", template, ct: inv.Ct).ConfigureAwait(false)).Trim();
        try
        {
            await StartCommand.StartAsync(inv, name).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QubesApiException or OperationCanceledException)
        {
            // qubesd cleans up a disposable whose start failed; after Ctrl-C we do, as nothing will use it.
            var answer = await inv.Api.SendAsync("admin.vm.Kill", name, ct: CancellationToken.None).ConfigureAwait(false);
            if (answer is QubesActors.AdminApi.Wire.AdminResponse.Error { ClassName: not "QubesVMNotStartedError" and not "QubesVMNotFoundError" } error)
                inv.BulkError($"Failed to kill disposable {name}: {error.Message}");
            throw;
        }
        inv.Out.WriteCells(name);
        return Qvm.ExitOk;
    }
}
