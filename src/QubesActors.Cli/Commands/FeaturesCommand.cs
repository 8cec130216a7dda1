using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>qvm features (qvm-features): <c>VM</c> lists, <c>VM FEATURE</c> prints, <c>VM FEATURE VALUE</c> sets, <c>--unset</c> removes.</summary>
public static class FeaturesCommand
{
    public static Command Create(QvmContext context)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube" };
        var feature = new Argument<string?>("FEATURE") { Description = "Feature name", Arity = ArgumentArity.ZeroOrOne };
        var value = new Argument<string?>("VALUE") { Description = "New value ('' = false)", Arity = ArgumentArity.ZeroOrOne };
        var unset = new Option<bool>("--unset", "--default", "--delete", "-D") { Description = "Remove FEATURE" };
        var output = Qvm.OutputOption();
        var command = new Command("features", "Show or change a qube's features (qvm-features)");
        command.Arguments.Add(vm);
        command.Arguments.Add(feature);
        command.Arguments.Add(value);
        command.Options.Add(unset);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var qube = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var name = inv.Get(feature);
            var newValue = inv.Get(value);
            if (name is null)
            {
                if (inv.Get(unset))
                    throw new QvmUsageException("--unset needs a FEATURE");
                var features = await ListAsync(inv, qube, _ => true).ConfigureAwait(false);
                WriteMap(inv, output, features);
                return Qvm.ExitOk;
            }
            if (inv.Get(unset))
            {
                if (newValue is not null)
                    throw new QvmUsageException("--unset and VALUE are mutually exclusive");
                try
                {
                    await inv.Api.CallAsync("admin.vm.feature.Remove", qube, name, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e) when (e.ClassName == "QubesFeatureNotFoundError")
                {
                    // Already unset.
                }
                return Qvm.ExitOk;
            }
            if (newValue is not null)
            {
                await inv.Api.CallAsync("admin.vm.feature.Set", qube, name, newValue, inv.Ct).ConfigureAwait(false);
                return Qvm.ExitOk;
            }
            var current = await inv.Api.CallAsync("admin.vm.feature.Get", qube, name, ct: inv.Ct).ConfigureAwait(false);
            if (inv.Json(output))
                inv.WriteJson(w => w.WriteStringValue(current));
            else
                inv.Out.WriteCells(current);
            return Qvm.ExitOk;
        });
        return command;
    }

    public static async Task<List<KeyValuePair<string, string>>> ListAsync(Invocation inv, string qube, Func<string, bool> which)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var name in (await inv.Api.FeatureNamesAsync(qube, inv.Ct).ConfigureAwait(false)).Where(which).Order(StringComparer.Ordinal))
            if (await inv.Api.FeatureAsync(qube, name, inv.Ct).ConfigureAwait(false) is { } v)
                result.Add(new(name, v));
        return result;
    }

    public static void WriteMap(Invocation inv, Option<string> output, IReadOnlyList<KeyValuePair<string, string>> pairs)
    {
        if (inv.Json(output))
        {
            inv.WriteJson(w =>
            {
                w.WriteStartObject();
                foreach (var (k, v) in pairs)
                    w.WriteString(k, v);
                w.WriteEndObject();
            });
            return;
        }
        var width = pairs.Count == 0 ? 0 : pairs.Max(p => p.Key.Length);
        foreach (var (k, v) in pairs)
            inv.Out.WriteCells((k.PadRight(width) + "  " + v).TrimEnd());
    }
}
