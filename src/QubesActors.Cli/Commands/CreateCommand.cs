using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm create (qvm-create): admin.vm.Create.&lt;Class&gt; with <c>name= label=</c>, then each <c>--property</c> through
/// admin.vm.property.Set; if a property is refused the new qube is removed again, so a failed create leaves nothing.
/// </summary>
public static class CreateCommand
{
    public static Command Create(QvmContext context)
    {
        var name = new Argument<string?>("VMNAME") { Description = "Name of the new qube", Arity = ArgumentArity.ZeroOrOne };
        var klass = new Option<string?>("--class", "-C") { Description = "Class of the new qube (default AppVM)" };
        var template = new Option<string?>("--template", "-t") { Description = "Template (default: the global default_template)" };
        var label = new Option<string?>("--label", "-l") { Description = "Label (name or index); required" };
        var properties = new Option<string[]>("--property", "--prop") { Description = "NAME=VALUE to set after creation (repeatable)" };
        var standalone = new Option<bool>("--standalone") { Description = "Same as --class StandaloneVM" };
        var disp = new Option<bool>("--disp") { Description = "Same as --class DispVM --label red" };
        var helpClasses = new Option<bool>("--help-classes") { Description = "List the qube classes" };
        var command = new Command("create", "Create a qube (qvm-create)");
        command.Arguments.Add(name);
        foreach (var option in new Option[] { klass, template, label, properties, standalone, disp, helpClasses })
            command.Options.Add(option);
        command.SetQvmAction(context, async inv =>
        {
            if (inv.Get(helpClasses))
            {
                inv.Out.WriteText(await inv.Api.CallAsync("admin.vmclass.List", "dom0", ct: inv.Ct).ConfigureAwait(false));
                return Qvm.ExitOk;
            }
            var vmName = inv.Get(name) ?? throw new QvmUsageException("the following arguments are required: VMNAME");
            var cls = inv.Get(klass) ?? (inv.Get(standalone) ? "StandaloneVM" : inv.Get(disp) ? "DispVM" : "AppVM");
            var vmLabel = inv.Get(label) ?? (inv.Get(disp) ? "red" : throw new QvmUsageException("the following arguments are required: --label/-l"));
            var props = new List<KeyValuePair<string, string>>();
            foreach (var pair in inv.Get(properties) ?? [])
            {
                var eq = pair.IndexOf('=');
                if (eq <= 0)
                    throw new QvmUsageException($"--property: expected NAME=VALUE, got '{pair}'");
                props.Add(new(pair[..eq], pair[(eq + 1)..]));
            }
            var classes = QubesApi.Lines(await inv.Api.CallAsync("admin.vmclass.List", "dom0", ct: inv.Ct).ConfigureAwait(false));
            if (!classes.Contains(cls) || cls == "AdminVM")
                throw new QvmUsageException($"no such class: '{cls}'");
            // Classes without a template (TemplateVM, StandaloneVM) take no argument.
            var arg = cls is "TemplateVM" or "StandaloneVM" ? "" : inv.Get(template) ?? "";
            if (arg.Length > 0)
                await inv.ResolveAsync(arg).ConfigureAwait(false);
            await inv.Api.CallAsync($"admin.vm.Create.{cls}", "dom0", arg, $"name={vmName} label={vmLabel}", inv.Ct).ConfigureAwait(false);
            foreach (var (key, value) in props)
            {
                try
                {
                    await inv.Api.CallAsync("admin.vm.property.Set", vmName, key, value, inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e)
                {
                    // Leave nothing half-configured behind.
                    await inv.Api.SendAsync("admin.vm.Remove", vmName, ct: CancellationToken.None).ConfigureAwait(false);
                    throw new QvmRuntimeException($"property {key}: {e.Message}; {vmName} was not created");
                }
            }
            return Qvm.ExitOk;
        });
        return command;
    }
}
