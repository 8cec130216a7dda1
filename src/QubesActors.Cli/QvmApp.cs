using System.CommandLine;
using QubesActors.Cli.Commands;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli;

/// <summary>The qvm command tree. One-shot runs parse argv; <c>qvm shell</c> parses each line against the same tree.</summary>
public static class QvmApp
{
    /// <summary>
    /// No response files: qrexec tokens start with '@' (<c>@dispvm</c>, <c>@default</c>), and System.CommandLine would read
    /// them as files to expand.
    /// </summary>
    public static ParserConfiguration ParserConfiguration { get; } = new() { ResponseFileTokenReplacer = null };

    public static RootCommand Build(QvmContext context)
    {
        var root = new RootCommand("qvm: manage qubes through qubesd's Admin API");
        root.Options.Add(Qvm.SocketOption());
        root.Options.Add(Qvm.QrexecSocketOption());
        // Commands are added here, one static class per command under Commands/ and Shell/.
        root.Subcommands.Add(LsCommand.Create(context));
        root.Subcommands.Add(CreateCommand.Create(context));
        root.Subcommands.Add(StartCommand.Create(context));
        root.Subcommands.Add(ShutdownCommand.Create(context));
        root.Subcommands.Add(PowerCommands.Kill(context));
        root.Subcommands.Add(PowerCommands.Pause(context));
        root.Subcommands.Add(PowerCommands.Unpause(context));
        root.Subcommands.Add(RemoveCommand.Create(context));
        root.Subcommands.Add(CheckCommand.Create(context));
        root.Subcommands.Add(PrefsCommand.Create(context));
        root.Subcommands.Add(PrefsCommand.CreateGlobal(context));
        root.Subcommands.Add(TagsCommand.Create(context));
        root.Subcommands.Add(FeaturesCommand.Create(context));
        root.Subcommands.Add(ServiceCommand.Create(context));
        root.Subcommands.Add(FirewallCommand.Create(context));
        root.Subcommands.Add(DeviceCommand.Create(context));
        root.Subcommands.Add(DeviceCommand.CreateAlias(context, "usb"));
        root.Subcommands.Add(DeviceCommand.CreateAlias(context, "block"));
        root.Subcommands.Add(DeviceCommand.CreateAlias(context, "pci"));
        root.Subcommands.Add(EventsCommand.Create(context));
        root.Subcommands.Add(RunCommand.Create(context));
        root.Subcommands.Add(CopyToVmCommand.Create(context, move: false));
        root.Subcommands.Add(CopyToVmCommand.Create(context, move: true));
        root.Subcommands.Add(OpenInVmCommand.Create(context, disposable: false));
        root.Subcommands.Add(OpenInVmCommand.Create(context, disposable: true));
        root.Subcommands.Add(CallCommand.Create(context));
        root.Subcommands.Add(PolicyCommand.Create(context));
        root.Subcommands.Add(ShellCommand.Create(context));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, QvmContext context, CancellationToken ct = default) =>
        await InvokeAsync(Build(context), args, context, ct).ConfigureAwait(false);

    /// <summary>
    /// Parses and runs one command line against <paramref name="root"/> (built once by <see cref="Build"/>; the shell
    /// calls this per line). Parse errors are reported argparse-style on the context's error writer (exit 2), help
    /// goes to the context's console, and no process-wide Ctrl-C handler is installed: the caller owns
    /// <paramref name="ct"/>.
    /// </summary>
    public static async Task<int> InvokeAsync(RootCommand root, IReadOnlyList<string> args, QvmContext context, CancellationToken ct = default)
    {
        var parse = root.Parse(args, ParserConfiguration);
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            var path = Qvm.PathOf(parse);
            foreach (var error in parse.Errors)
                context.Error.ErrorLine($"{path}: error: {error.Message}");
            context.Error.ErrorLine($"Try '{path} --help' for more information.");
            return Qvm.ExitUsage;
        }
        var configuration = new InvocationConfiguration
        {
            Output = context.Out.Profile.Out.Writer,
            Error = context.Error,
            ProcessTerminationTimeout = null,
        };
        return await parse.InvokeAsync(configuration, ct).ConfigureAwait(false);
    }
}
