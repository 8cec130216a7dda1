using System.CommandLine;
using Spectre.Console;

namespace QubesActors.Cli.Infrastructure;

/// <summary>Shared command plumbing: the error and exit-code conventions of the qvm-* tools, common options.</summary>
public static class Qvm
{
    public const string SocketOptionName = "--socket";
    public const string QrexecSocketOptionName = "--qrexec-socket";

    public const int ExitOk = 0;
    public const int ExitError = 1;
    public const int ExitUsage = 2;

    /// <summary>128 + SIGINT, as a shell reports a command stopped by Ctrl-C.</summary>
    public const int ExitCancelled = 130;

    /// <summary>The global <c>--socket</c> option; recursive so it may follow any subcommand.</summary>
    public static Option<string?> SocketOption() => new(SocketOptionName)
    {
        Description = $"qubesd's Admin API socket (default: ${QvmContext.SocketVariable}, else {QvmContext.DefaultSocket})",
        Recursive = true,
    };

    /// <summary>The global <c>--qrexec-socket</c> option (qvm run, copy-to-vm, open-in-vm): dom0's qrexec socket.</summary>
    public static Option<string?> QrexecSocketOption() => new(QrexecSocketOptionName)
    {
        Description = $"qubesd's dom0 qrexec socket (default: ${QvmContext.QrexecSocketVariable}, else {QvmContext.DefaultQrexecSocketName} beside the Admin API socket)",
        Recursive = true,
    };

    /// <summary><c>-o/--output text|json</c> of every command but ls (whose -o is its format).</summary>
    public static Option<string> OutputOption()
    {
        var option = new Option<string>("--output", "-o") { Description = "Output format: text or json (one JSON document, for scripts)", DefaultValueFactory = _ => "text" };
        option.AcceptOnlyFromAmong("text", "json");
        return option;
    }

    public static string PathOf(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(result.Command is RootCommand ? "qvm" : result.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>
    /// Sets <paramref name="command"/>'s action: runs <paramref name="action"/> and maps failures to the qvm-* tools'
    /// conventions (usage errors exit 2, runtime errors exit 1, cancellation 130). Output goes through the context only.
    /// </summary>
    public static void SetQvmAction(this Command command, QvmContext context, Func<Invocation, Task<int>> action) =>
        command.SetAction(async (parse, ct) =>
        {
            var invocation = new Invocation(parse, context, ct);
            try
            {
                return await action(invocation).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return ExitCancelled;
            }
            catch (QvmUsageException e)
            {
                context.Error.ErrorLine($"{invocation.CommandPath}: error: {e.Message}");
                return ExitUsage;
            }
            catch (Exception e) when (e is QubesApiException or QvmRuntimeException or QubesdUnreachableException)
            {
                context.Error.ErrorLine($"{invocation.CommandPath}: error: {e.Message}");
                return ExitError;
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                context.Error.ErrorLine($"{invocation.CommandPath}: error: connection to qubesd at '{invocation.Api.SocketPath}' failed: {e.Message}");
                return ExitError;
            }
        });

    /// <summary>"--all/--exclude" with positional names, as the bulk qvm-* tools take them.</summary>
    public sealed class Selection
    {
        public Argument<string[]> Names { get; } = new("VMNAME") { Description = "Qube names", Arity = ArgumentArity.ZeroOrMore };
        public Option<bool> All { get; } = new("--all") { Description = "All qubes except dom0" };
        public Option<string[]> Exclude { get; } = new("--exclude") { Description = "Leave this qube out (only with --all; repeatable)", AllowMultipleArgumentsPerToken = false };

        public void AddTo(Command command)
        {
            command.Arguments.Add(Names);
            command.Options.Add(All);
            command.Options.Add(Exclude);
        }

        public async Task<IReadOnlyList<QubeEntry>> ResolveAsync(Invocation inv, bool allowDom0 = true)
        {
            var names = inv.Get(Names) ?? [];
            var exclude = inv.Get(Exclude) ?? [];
            var all = inv.Get(All);
            if (exclude.Length > 0 && !all)
                throw new QvmUsageException("--exclude can only be used with --all");
            if (all && names.Length > 0)
                throw new QvmUsageException("--all and qube names are mutually exclusive");
            if (!all && names.Length == 0)
                throw new QvmUsageException("one of the arguments --all VMNAME is required");
            if (all)
            {
                var list = await inv.Api.ListAsync(inv.Ct).ConfigureAwait(false);
                foreach (var name in exclude.Where(n => list.All(q => q.Name != n)))
                    throw new QvmUsageException($"no such domain: '{name}'");
                return [.. list.Where(q => q.Class != "AdminVM" && !exclude.Contains(q.Name))];
            }
            var qubes = await inv.ResolveAsync(names).ConfigureAwait(false);
            if (!allowDom0 && qubes.FirstOrDefault(q => q.Class == "AdminVM") is { } dom0)
                throw new QvmUsageException($"cannot operate on {dom0.Name}");
            return qubes;
        }
    }

    public static Style Bold { get; } = new(decoration: Decoration.Bold);
}
