using System.CommandLine;
using QubesActors.Cli.Infrastructure;
using Spectre.Console;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm remove (qvm-remove, §3.3): asks <c>Are you sure? [y/N]</c> unless <c>--force</c>; a qube still in use is
/// reported with what uses it (explicit qube properties and global properties, read back through the API).
/// </summary>
public static class RemoveCommand
{
    public static Command Create(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var force = new Option<bool>("--force", "-f") { Description = "Do not ask for confirmation" };
        var command = new Command("remove", "Remove qubes (qvm-remove)");
        selection.AddTo(command);
        command.Options.Add(force);
        command.SetQvmAction(context, async inv =>
        {
            var qubes = await selection.ResolveAsync(inv).ConfigureAwait(false);
            if (!inv.Get(force))
            {
                if (!inv.Interactive)
                    throw new QvmRuntimeException("not asking for confirmation on a non-interactive terminal; use --force");
                inv.Out.WriteCells($"This will completely remove the selected qube(s): {string.Join(", ", qubes.Select(q => q.Name))}");
                if (!await inv.Out.ConfirmAsync("Are you sure?", defaultValue: false, inv.Ct).ConfigureAwait(false))
                    return Qvm.ExitError;
            }
            var failed = false;
            foreach (var qube in qubes)
            {
                try
                {
                    await inv.Api.CallAsync("admin.vm.Remove", qube.Name, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e) when (e.ClassName == "QubesVMInUseError")
                {
                    var uses = await UsesAsync(inv, qube.Name).ConfigureAwait(false);
                    if (uses.Count == 0)
                    {
                        inv.BulkError($"Failed to remove: {qube.Name}: {e.Message}");
                    }
                    else
                    {
                        inv.Error.ErrorLine($"VM {qube.Name} cannot be removed. It is in use as:");
                        foreach (var use in uses)
                            inv.Error.ErrorLine(" - " + use);
                    }
                    failed = true;
                }
                catch (QubesApiException e)
                {
                    inv.BulkError($"Failed to remove: {qube.Name}: {e.Message}");
                    failed = true;
                }
            }
            return failed ? Qvm.ExitError : Qvm.ExitOk;
        });
        return command;
    }

    /// <summary>What refers to <paramref name="name"/>: global qube-valued properties, and explicitly set ones of other qubes.</summary>
    private static async Task<List<string>> UsesAsync(Invocation inv, string name)
    {
        var uses = new List<string>();
        foreach (var (prop, value) in (await inv.Api.GetAllAsync("dom0", inv.Ct, global: true).ConfigureAwait(false)).OrderBy(p => p.Key, StringComparer.Ordinal))
            if (value.Type == "vm" && value.Value == name)
                uses.Add($"global property {prop}");
        foreach (var qube in await inv.Api.ListAsync(inv.Ct).ConfigureAwait(false))
        {
            if (qube.Name == name)
                continue;
            foreach (var (prop, value) in (await inv.Api.GetAllAsync(qube.Name, inv.Ct).ConfigureAwait(false)).OrderBy(p => p.Key, StringComparer.Ordinal))
                if (value.Type == "vm" && !value.IsDefault && value.Value == name)
                    uses.Add($"{prop} for {qube.Name}");
        }
        return uses;
    }
}
