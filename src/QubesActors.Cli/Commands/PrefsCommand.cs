using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm prefs (qvm-prefs) and qvm global-prefs (qubes-prefs): list, get, set and reset properties.
/// List lines are <c>NAME  FLAG  VALUE</c>, FLAG <c>-</c> explicitly set, <c>D</c> default, <c>U</c> unset.
/// </summary>
public static class PrefsCommand
{
    public static Command Create(QvmContext context) => Build(context, global: false);

    public static Command CreateGlobal(QvmContext context) => Build(context, global: true);

    private static Command Build(QvmContext context, bool global)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube" };
        var property = new Argument<string?>("PROPERTY") { Description = "Property to get, set or reset", Arity = ArgumentArity.ZeroOrOne };
        var value = new Argument<string?>("VALUE") { Description = "New value ('' or none for no qube)", Arity = ArgumentArity.ZeroOrOne };
        var reset = new Option<bool>("--default", "-D") { Description = "Reset PROPERTY to its default" };
        var hideDefault = new Option<bool>("--hide-default") { Description = "List only explicitly set properties" };
        var helpProperties = new Option<bool>("--help-properties") { Description = "List the properties with their help text" };
        var output = Qvm.OutputOption();

        var command = global
            ? new Command("global-prefs", "Show or change global properties (qubes-prefs)")
            : new Command("prefs", "Show or change a qube's properties (qvm-prefs)");
        if (!global)
            command.Arguments.Add(vm);
        command.Arguments.Add(property);
        command.Arguments.Add(value);
        command.Options.Add(reset);
        command.Options.Add(hideDefault);
        command.Options.Add(helpProperties);
        command.Options.Add(output);

        command.SetQvmAction(context, async inv =>
        {
            var dest = global ? "dom0" : (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var prefix = global ? "admin.property." : "admin.vm.property.";
            var name = inv.Get(property);
            var newValue = inv.Get(value);
            var json = inv.Json(output);

            if (inv.Get(helpProperties))
                return await HelpAsync(inv, dest, prefix, global).ConfigureAwait(false);

            if (name is null)
            {
                if (inv.Get(reset))
                    throw new QvmUsageException("--default needs a PROPERTY");
                var all = await inv.Api.GetAllAsync(dest, inv.Ct, global).ConfigureAwait(false);
                var shown = all.Where(p => !(inv.Get(hideDefault) && p.Value.IsDefault)).OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
                if (json)
                {
                    inv.WriteJson(w =>
                    {
                        w.WriteStartObject();
                        foreach (var (key, p) in shown)
                        {
                            w.WriteStartObject(key);
                            w.WriteString("flag", Flag(p).ToString());
                            w.WriteBoolean("default", p.IsDefault);
                            w.WriteString("type", p.Type);
                            if (Flag(p) == 'U')
                                w.WriteNull("value");
                            else
                                w.WriteString("value", p.Value);
                            w.WriteEndObject();
                        }
                        w.WriteEndObject();
                    });
                    return Qvm.ExitOk;
                }
                var width = shown.Count == 0 ? 0 : shown.Max(p => p.Key.Length);
                foreach (var (key, p) in shown)
                    inv.Out.WriteCells((key.PadRight(width) + "  " + Flag(p) + "  " + p.Value).TrimEnd());
                return Qvm.ExitOk;
            }

            try
            {
                if (inv.Get(reset))
                {
                    if (newValue is not null)
                        throw new QvmUsageException("--default and VALUE are mutually exclusive");
                    await inv.Api.CallAsync(prefix + "Reset", dest, name, ct: inv.Ct).ConfigureAwait(false);
                    return Qvm.ExitOk;
                }
                var current = await inv.Api.GetAsync(dest, name, inv.Ct, global).ConfigureAwait(false);
                if (newValue is null)
                {
                    if (json)
                        inv.WriteJson(w =>
                        {
                            w.WriteStartObject();
                            w.WriteString("name", name);
                            w.WriteBoolean("default", current.IsDefault);
                            w.WriteString("type", current.Type);
                            w.WriteString("value", current.Value);
                            w.WriteEndObject();
                        });
                    else
                        inv.Out.WriteCells(current.Value);
                    return Qvm.ExitOk;
                }
                // qvm-prefs: 'none' (any case) means no qube for qube-valued properties.
                if (current.Type == "vm" && newValue.Equals("none", StringComparison.OrdinalIgnoreCase))
                    newValue = "";
                await inv.Api.CallAsync(prefix + "Set", dest, name, newValue, inv.Ct).ConfigureAwait(false);
                return Qvm.ExitOk;
            }
            catch (QubesApiException e) when (e.ClassName == "QubesNoSuchPropertyError")
            {
                throw new QvmUsageException($"no such property: '{name}'");
            }
        });
        return command;
    }

    /// <summary>'-' explicitly set; 'D' at its default; 'U' no value at all (a default that yields nothing).</summary>
    private static char Flag(PropertyValue p) => !p.IsDefault ? '-' : p.Value.Length > 0 || p.Type == "vm" ? 'D' : 'U';

    private static async Task<int> HelpAsync(Invocation inv, string dest, string prefix, bool global)
    {
        var names = QubesApi.Lines(await inv.Api.CallAsync(prefix + "List", dest, ct: inv.Ct).ConfigureAwait(false));
        var rows = new List<IReadOnlyList<Cell>>();
        foreach (var name in names)
        {
            string help;
            try
            {
                help = await inv.Api.CallAsync(prefix + "Help", dest, name, ct: inv.Ct).ConfigureAwait(false);
            }
            catch (QubesApiException e) when (e.IsNoSuchMethod)
            {
                // Older qubesd without property.Help: the help text of our own schema.
                help = (global ? Core.Model.GlobalProperties.All : Core.Model.QubeProperties.All).GetValueOrDefault(name)?.Help ?? "";
            }
            rows.Add([name, help.ReplaceLineEndings(" ").Trim()]);
        }
        AlignedTable.Write(inv.Out, rows);
        return Qvm.ExitOk;
    }
}
