using System.CommandLine;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm service (qvm-service): services are features <c>service.NAME</c>, '1' on and '' off. <c>VM</c> lists
/// <c>NAME  on|off</c>; <c>VM SVC</c> prints on/off (exit 1 if unset); <c>VM SVC on|off</c>, <c>--enable</c>,
/// <c>--disable</c>, <c>--default</c> change it.
/// </summary>
public static class ServiceCommand
{
    private const string Prefix = "service.";

    public static Command Create(QvmContext context)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube" };
        var service = new Argument<string?>("SERVICE") { Description = "Service name", Arity = ArgumentArity.ZeroOrOne };
        var value = new Argument<string?>("VALUE") { Description = "on or off (also 1/0, true/false, yes/no, enable/disable)", Arity = ArgumentArity.ZeroOrOne };
        var enable = new Option<bool>("--enable", "-e") { Description = "Turn SERVICE on" };
        var disable = new Option<bool>("--disable", "-d") { Description = "Turn SERVICE off" };
        var reset = new Option<bool>("--default", "-D", "--unset") { Description = "Remove the setting (the qube's default applies)" };
        var output = Qvm.OutputOption();
        var command = new Command("service", "Show or change a qube's services (qvm-service)");
        command.Arguments.Add(vm);
        command.Arguments.Add(service);
        command.Arguments.Add(value);
        foreach (var option in new Option[] { enable, disable, reset, output })
            command.Options.Add(option);
        command.SetQvmAction(context, async inv =>
        {
            var qube = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var name = inv.Get(service);
            var given = new[] { inv.Get(value) is not null, inv.Get(enable), inv.Get(disable), inv.Get(reset) }.Count(b => b);
            if (given > 1)
                throw new QvmUsageException("give only one of VALUE, --enable, --disable, --default");
            if (name is null)
            {
                if (given > 0)
                    throw new QvmUsageException("a SERVICE is needed to change a setting");
                var services = (await FeaturesCommand.ListAsync(inv, qube, f => f.StartsWith(Prefix, StringComparison.Ordinal)).ConfigureAwait(false))
                    .Select(p => new KeyValuePair<string, string>(p.Key[Prefix.Length..], OnOff(p.Value))).ToList();
                FeaturesCommand.WriteMap(inv, output, services);
                return Qvm.ExitOk;
            }
            var feature = Prefix + name;
            if (inv.Get(reset))
            {
                try
                {
                    await inv.Api.CallAsync("admin.vm.feature.Remove", qube, feature, ct: inv.Ct).ConfigureAwait(false);
                }
                catch (QubesApiException e) when (e.ClassName == "QubesFeatureNotFoundError")
                {
                }
                return Qvm.ExitOk;
            }
            bool? on = inv.Get(enable) ? true : inv.Get(disable) ? false : inv.Get(value) is { } v ? Parse(v) : null;
            if (on is { } turnOn)
            {
                await inv.Api.CallAsync("admin.vm.feature.Set", qube, feature, turnOn ? "1" : "", inv.Ct).ConfigureAwait(false);
                return Qvm.ExitOk;
            }
            var current = await inv.Api.FeatureAsync(qube, feature, inv.Ct).ConfigureAwait(false);
            if (current is null)
            {
                inv.Error.ErrorLine($"{inv.CommandPath}: service '{name}' is not set for {qube}");
                return Qvm.ExitError;
            }
            if (inv.Json(output))
                inv.WriteJson(w => w.WriteBooleanValue(current.Length > 0));
            else
                inv.Out.WriteCells(OnOff(current));
            return Qvm.ExitOk;
        });
        return command;
    }

    private static string OnOff(string value) => value.Length > 0 ? "on" : "off";

    private static bool Parse(string value) => value.ToLowerInvariant() switch
    {
        "on" or "1" or "true" or "yes" or "enable" or "enabled" => true,
        "off" or "0" or "false" or "no" or "disable" or "disabled" or "" => false,
        _ => throw new QvmUsageException($"invalid value: '{value}' (use on or off)"),
    };
}
