using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm check (qvm-check): does the qube exist, and with a flag is it running / paused / a template / networked.
/// Answers by exit code (0 all match, 1 otherwise) and a line per qube unless <c>--quiet</c>.
/// </summary>
public static class CheckCommand
{
    public static Command Create(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var running = new Option<bool>("--running") { Description = "Is the qube active (running, paused, ...)" };
        var paused = new Option<bool>("--paused") { Description = "Is the qube paused" };
        var template = new Option<bool>("--template") { Description = "Is the qube a template" };
        var networked = new Option<bool>("--networked") { Description = "Does the qube have network (a netvm, or provides network)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Answer by exit code only" };
        var command = new Command("check", "Check a qube's existence or state by exit code (qvm-check)");
        selection.AddTo(command);
        foreach (var option in new Option[] { running, paused, template, networked, quiet })
            command.Options.Add(option);
        command.SetQvmAction(context, async inv =>
        {
            var names = inv.Get(selection.Names) ?? [];
            IReadOnlyList<QubeEntry> qubes;
            var missing = new List<string>();
            if (inv.Get(selection.All))
            {
                qubes = await selection.ResolveAsync(inv).ConfigureAwait(false);
            }
            else
            {
                if (names.Length == 0)
                    throw new QvmUsageException("one of the arguments --all VMNAME is required");
                var all = await inv.Api.ListAsync(inv.Ct).ConfigureAwait(false);
                // A check for existence must not be an argparse error: missing qubes are an answer.
                missing = [.. names.Where(n => all.All(q => q.Name != n))];
                qubes = [.. all.Where(q => names.Contains(q.Name))];
            }
            var ok = missing.Count == 0;
            void Say(string text)
            {
                if (!inv.Get(quiet))
                    inv.Out.WriteCells(text);
            }
            foreach (var name in missing)
                Say($"{name}: does not exist");
            foreach (var qube in qubes)
            {
                var (pass, yes, no) = inv.Get(running) ? (qube.State != "Halted", "is running", "is not running")
                    : inv.Get(paused) ? (qube.State == "Paused", "is paused", "is not paused")
                    : inv.Get(template) ? (qube.Class == "TemplateVM", "is a template", "is not a template")
                    : inv.Get(networked) ? (await NetworkedAsync(inv, qube.Name).ConfigureAwait(false), "is networked", "is not networked")
                    : (true, "exists", "");
                Say($"{qube.Name}: {(pass ? yes : no)}");
                ok &= pass;
            }
            return ok ? Qvm.ExitOk : Qvm.ExitError;
        });
        return command;
    }

    private static async Task<bool> NetworkedAsync(Invocation inv, string name)
    {
        var props = await inv.Api.GetAllAsync(name, inv.Ct).ConfigureAwait(false);
        return props.GetValueOrDefault("provides_network")?.Value == "True" || props.GetValueOrDefault("netvm")?.Value is { Length: > 0 };
    }
}
