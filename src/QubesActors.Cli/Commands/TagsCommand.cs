using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>qvm tags (qvm-tags): <c>VM [list [TAG]]</c> (with TAG: exit 0 if set, 1 if not), <c>VM add TAG…</c>, <c>VM del TAG…</c>.</summary>
public static class TagsCommand
{
    public static Command Create(QvmContext context)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube" };
        var action = new Argument<string>("ACTION") { Description = "list (default), add or del", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "list" };
        action.AcceptOnlyFromAmong("list", "ls", "l", "add", "a", "set", "del", "d", "unset", "u");
        var tags = new Argument<string[]>("TAG") { Description = "Tags", Arity = ArgumentArity.ZeroOrMore };
        var output = Qvm.OutputOption();
        var command = new Command("tags", "Show or change a qube's tags (qvm-tags)");
        command.Arguments.Add(vm);
        command.Arguments.Add(action);
        command.Arguments.Add(tags);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var qube = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var names = inv.Get(tags) ?? [];
            switch (inv.Get(action))
            {
                case "add" or "a" or "set":
                    if (names.Length == 0)
                        throw new QvmUsageException("add needs at least one TAG");
                    foreach (var tag in names)
                        await inv.Api.CallAsync("admin.vm.tag.Set", qube, tag, ct: inv.Ct).ConfigureAwait(false);
                    return Qvm.ExitOk;
                case "del" or "d" or "unset" or "u":
                    if (names.Length == 0)
                        throw new QvmUsageException("del needs at least one TAG");
                    foreach (var tag in names)
                    {
                        try
                        {
                            await inv.Api.CallAsync("admin.vm.tag.Remove", qube, tag, ct: inv.Ct).ConfigureAwait(false);
                        }
                        catch (QubesApiException e) when (e.ClassName == "QubesTagNotFoundError")
                        {
                            // Removing an absent tag is not an error for qvm-tags.
                        }
                    }
                    return Qvm.ExitOk;
                default:
                    if (names.Length > 1)
                        throw new QvmUsageException("list takes at most one TAG");
                    var all = QubesApi.Lines(await inv.Api.CallAsync("admin.vm.tag.List", qube, ct: inv.Ct).ConfigureAwait(false))
                        .Order(StringComparer.Ordinal).ToList();
                    var shown = names.Length == 1 ? all.Where(t => t == names[0]).ToList() : all;
                    if (inv.Json(output))
                        inv.WriteJson(w =>
                        {
                            w.WriteStartArray();
                            foreach (var tag in shown)
                                w.WriteStringValue(tag);
                            w.WriteEndArray();
                        });
                    else
                        foreach (var tag in shown)
                            inv.Out.WriteCells(tag);
                    return names.Length == 1 && shown.Count == 0 ? Qvm.ExitError : Qvm.ExitOk;
            }
        });
        return command;
    }
}
