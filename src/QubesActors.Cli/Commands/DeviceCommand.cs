using System.CommandLine;
using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm device CLASS ACTION (qvm-device, §5) and the aliases qvm usb / block / pci (qvm-usb, qvm-block, qvm-pci).
/// Actions: list|ls|l [VM] [-s], attach|at|a VM DEVICE [--ro] [-o k=v] [--persistent], detach|dt|d VM [DEVICE],
/// assign|s VM DEVICE [--required|--ask] [--port|--device], unassign|u VM DEVICE, info|i DEVICE.
/// DEVICE is BACKEND:PORT[:DEVICE_ID]; devices and assignments travel in the key='value' form of Core's codec.
/// </summary>
public static class DeviceCommand
{
    public static Command Create(QvmContext context)
    {
        var command = new Command("device", "List, attach, detach and assign devices (qvm-device)");
        foreach (var devclass in DeviceClasses.All)
        {
            var sub = new Command(devclass.ApiName(), $"{devclass.ApiName()} devices");
            AddActions(sub, context, devclass);
            command.Subcommands.Add(sub);
        }
        return command;
    }

    /// <summary><c>qvm usb</c> = <c>qvm device usb</c>.</summary>
    public static Command CreateAlias(QvmContext context, string devclassName)
    {
        if (!DeviceClasses.TryParse(devclassName, out var devclass))
            throw new ArgumentException($"no device class {devclassName}", nameof(devclassName));
        var command = new Command(devclassName, $"Same as 'qvm device {devclassName}' (qvm-{devclassName})");
        AddActions(command, context, devclass);
        return command;
    }

    private static void AddActions(Command parent, QvmContext context, DeviceClass devclass)
    {
        var list = List(context, devclass);
        parent.Subcommands.Add(list);
        // qvm-device CLASS without a subcommand lists, as upstream's does.
        parent.Action = list.Action;
        parent.Subcommands.Add(Attach(context, devclass));
        parent.Subcommands.Add(Detach(context, devclass));
        parent.Subcommands.Add(Assign(context, devclass));
        parent.Subcommands.Add(Unassign(context, devclass));
        parent.Subcommands.Add(Info(context, devclass));
    }

    private static string Method(DeviceClass devclass, string action) => $"admin.vm.device.{devclass.ApiName()}.{action}";

    private static Argument<string> VmArgument() => new("VMNAME") { Description = "The frontend qube" };

    private static Argument<string> DeviceArgument() => new("DEVICE") { Description = "BACKEND:PORT[:DEVICE_ID]" };

    private static VirtualDevice ParseDevice(string text)
    {
        try
        {
            return VirtualDevice.ParseCli(text);
        }
        catch (QubesError e)
        {
            throw new QvmUsageException($"invalid device '{text}': {e.Message}");
        }
    }

    /// <summary>One line of Available/Attached/Assigned: <c>KEY key='value'…</c>; the key is skipped, the pairs parsed.</summary>
    private static IReadOnlyDictionary<string, string> Pairs(string line)
    {
        var space = line.IndexOf(' ');
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        if (space < 0)
            return pairs;
        try
        {
            foreach (var (k, v) in KeyValueCodec.Parse(line[(space + 1)..]))
                pairs[k] = v;
        }
        catch (QubesError e)
        {
            throw new QvmRuntimeException($"unreadable device line from qubesd: {e.Message}");
        }
        return pairs;
    }

    private sealed record Exposed(string Backend, string Port, string DeviceId, string Description, IReadOnlyDictionary<string, string> Fields);

    private sealed record Tie(string Frontend, string Backend, string Port, string DeviceId, string Mode, IReadOnlyDictionary<string, string> Options);

    private static async Task<List<Exposed>> AvailableAsync(Invocation inv, DeviceClass devclass, string backend)
    {
        var result = new List<Exposed>();
        foreach (var line in QubesApi.Lines(await inv.Api.CallAsync(Method(devclass, "Available"), backend, ct: inv.Ct).ConfigureAwait(false)))
        {
            var fields = Pairs(line);
            var description = fields.Count == 0 ? line : TryDescription(line[(line.IndexOf(' ') + 1)..]);
            result.Add(new Exposed(fields.GetValueOrDefault("backend_domain", backend), fields.GetValueOrDefault("port_id", "?"),
                fields.GetValueOrDefault("device_id", DeviceId.UnknownValue), description, fields));
        }
        return result;
    }

    private static string TryDescription(string serialized)
    {
        try
        {
            return DeviceInfo.Parse(serialized).Description;
        }
        catch (QubesError)
        {
            return "?";
        }
    }

    private static async Task<List<Tie>> TiesAsync(Invocation inv, DeviceClass devclass, string frontend, string which)
    {
        var result = new List<Tie>();
        foreach (var line in QubesApi.Lines(await inv.Api.CallAsync(Method(devclass, which), frontend, ct: inv.Ct).ConfigureAwait(false)))
        {
            var f = Pairs(line);
            result.Add(new Tie(f.GetValueOrDefault("frontend_domain", frontend), f.GetValueOrDefault("backend_domain", "?"), f.GetValueOrDefault("port_id", "?"),
                f.GetValueOrDefault("device_id", "*"), f.GetValueOrDefault("mode", "manual"),
                f.Where(p => p.Key.StartsWith('_')).ToDictionary(p => p.Key[1..], p => p.Value, StringComparer.Ordinal)));
        }
        return result;
    }

    private static Command List(QvmContext context, DeviceClass devclass)
    {
        var vm = new Argument<string?>("VMNAME") { Description = "Only devices exposed by, attached to or assigned to this qube", Arity = ArgumentArity.ZeroOrOne };
        var assignments = new Option<bool>("--assignments", "-s") { Description = "Show assignments too (*vm (mode: options))" };
        var output = Qvm.OutputOption();
        var command = new Command("list", $"List {devclass.ApiName()} devices");
        command.Aliases.Add("ls");
        command.Aliases.Add("l");
        command.Arguments.Add(vm);
        command.Options.Add(assignments);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var only = inv.Get(vm) is { } name ? (await inv.ResolveAsync(name).ConfigureAwait(false)).Name : null;
            var qubes = await inv.Api.ListAsync(inv.Ct).ConfigureAwait(false);
            var exposed = new List<Exposed>();
            var attached = new List<Tie>();
            var assigned = new List<Tie>();
            foreach (var qube in qubes)
            {
                exposed.AddRange(await AvailableAsync(inv, devclass, qube.Name).ConfigureAwait(false));
                attached.AddRange(await TiesAsync(inv, devclass, qube.Name, "Attached").ConfigureAwait(false));
                if (inv.Get(assignments))
                    assigned.AddRange(await TiesAsync(inv, devclass, qube.Name, "Assigned").ConfigureAwait(false));
            }
            var rows = new List<(string Device, string Description, List<string> UsedBy, List<Tie> Ties)>();
            foreach (var d in exposed.OrderBy(d => d.Backend, StringComparer.Ordinal).ThenBy(d => d.Port, StringComparer.Ordinal))
            {
                var ties = attached.Where(a => a.Backend == d.Backend && a.Port == d.Port).ToList();
                var usedBy = ties.Select(a => a.Frontend).ToList();
                var assignedTo = assigned.Where(a => (a.Backend == "*" || a.Backend == d.Backend) && (a.Port == "*" || a.Port == d.Port)
                    && (a.DeviceId == "*" || a.DeviceId == d.DeviceId)).ToList();
                usedBy.AddRange(assignedTo.Select(Describe));
                ties.AddRange(assignedTo);
                if (only is null || d.Backend == only || ties.Any(t => t.Frontend == only))
                    rows.Add(($"{d.Backend}:{d.Port}", d.Description, usedBy, ties));
            }
            // Assignments of devices that are not there now.
            foreach (var a in assigned.Where(a => !exposed.Any(d => (a.Backend == "*" || a.Backend == d.Backend) && (a.Port == "*" || a.Port == d.Port))))
                if (only is null || a.Frontend == only || a.Backend == only)
                    rows.Add(($"{a.Backend}:{a.Port}", "?", [Describe(a)], [a]));

            if (inv.Json(output))
            {
                inv.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var (device, description, _, ties) in rows)
                    {
                        w.WriteStartObject();
                        w.WriteString("device", device);
                        w.WriteString("description", description);
                        w.WriteStartArray("frontends");
                        foreach (var t in ties)
                        {
                            w.WriteStartObject();
                            w.WriteString("qube", t.Frontend);
                            w.WriteString("mode", t.Mode);
                            w.WriteStartObject("options");
                            foreach (var (k, v) in t.Options)
                                w.WriteString(k, v);
                            w.WriteEndObject();
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
                return Qvm.ExitOk;
            }
            AlignedTable.Write(inv.Out, [.. rows.Select(r => (IReadOnlyList<Cell>)[r.Device, r.Description, r.UsedBy.Count == 0 ? "" : string.Join(", ", r.UsedBy)])]);
            return Qvm.ExitOk;
        });
        return command;
    }

    private static string Describe(Tie a) =>
        $"*{a.Frontend} ({a.Mode}{(a.Options.Count == 0 ? "" : ": " + string.Join(", ", a.Options.Select(o => $"{o.Key}={o.Value}")))})";

    /// <summary>Fills in the device id of a concrete port from what its backend exposes (an attach names one device).</summary>
    private static async Task<VirtualDevice> ConcreteAsync(Invocation inv, DeviceClass devclass, VirtualDevice device)
    {
        if (!device.DeviceId.IsAny || device.Port.IsAnyBackend || device.Port.IsAnyPort)
            return device;
        await inv.ResolveAsync(device.Backend).ConfigureAwait(false);
        var found = (await AvailableAsync(inv, devclass, device.Backend).ConfigureAwait(false)).FirstOrDefault(d => d.Port == device.PortId);
        return found is null ? device : device with { DeviceId = new DeviceId(found.DeviceId) };
    }

    private static DeviceOptions ParseOptions(string[] options, bool readOnly)
    {
        var result = DeviceOptions.Empty;
        foreach (var option in options)
        {
            var eq = option.IndexOf('=');
            if (eq <= 0)
                throw new QvmUsageException($"--option: expected NAME=VALUE, got '{option}'");
            result = result.With(option[..eq], option[(eq + 1)..]);
        }
        return readOnly ? result.With("read-only", KeyValueCodec.Yes) : result;
    }

    private static Command Attach(QvmContext context, DeviceClass devclass)
    {
        var vm = VmArgument();
        var device = DeviceArgument();
        var ro = new Option<bool>("--ro") { Description = "Read-only (block devices)" };
        var options = new Option<string[]>("--option", "-o") { Description = "NAME=VALUE device option (repeatable)" };
        var persistent = new Option<bool>("--persistent", "-p") { Description = "Also assign it as required (legacy)" };
        var command = new Command("attach", $"Attach a {devclass.ApiName()} device to a running qube");
        command.Aliases.Add("at");
        command.Aliases.Add("a");
        command.Arguments.Add(vm);
        command.Arguments.Add(device);
        command.Options.Add(ro);
        command.Options.Add(options);
        command.Options.Add(persistent);
        command.SetQvmAction(context, async inv =>
        {
            var frontend = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var dev = await ConcreteAsync(inv, devclass, ParseDevice(inv.Get(device)!)).ConfigureAwait(false);
            var opts = ParseOptions(inv.Get(options) ?? [], inv.Get(ro));
            var attachment = new DeviceAssignment(devclass, dev, frontend, AssignmentMode.Manual, opts);
            await inv.Api.CallAsync(Method(devclass, "Attach"), frontend, dev.ToApiArgument(), attachment.Serialize(), inv.Ct).ConfigureAwait(false);
            if (inv.Get(persistent))
            {
                var assignment = new DeviceAssignment(devclass, dev, frontend, AssignmentMode.Required, opts);
                await inv.Api.CallAsync(Method(devclass, "Assign"), frontend, dev.ToApiArgument(), assignment.Serialize(), inv.Ct).ConfigureAwait(false);
            }
            return Qvm.ExitOk;
        });
        return command;
    }

    private static Command Detach(QvmContext context, DeviceClass devclass)
    {
        var vm = VmArgument();
        var device = new Argument<string?>("DEVICE") { Description = "BACKEND:PORT[:DEVICE_ID]; default: every attached device", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("detach", $"Detach {devclass.ApiName()} devices from a qube");
        command.Aliases.Add("dt");
        command.Aliases.Add("d");
        command.Arguments.Add(vm);
        command.Arguments.Add(device);
        command.SetQvmAction(context, async inv =>
        {
            var frontend = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var targets = inv.Get(device) is { } text
                ? [ParseDevice(text)]
                : (await TiesAsync(inv, devclass, frontend, "Attached").ConfigureAwait(false)).Select(t => new VirtualDevice(t.Backend, t.Port, t.DeviceId)).ToList();
            foreach (var dev in targets)
                await inv.Api.CallAsync(Method(devclass, "Detach"), frontend, dev.ToApiArgument(), ct: inv.Ct).ConfigureAwait(false);
            return Qvm.ExitOk;
        });
        return command;
    }

    private static Command Assign(QvmContext context, DeviceClass devclass)
    {
        var vm = VmArgument();
        var device = DeviceArgument();
        var required = new Option<bool>("--required") { Description = "The qube does not start without the device" };
        var ask = new Option<bool>("--ask") { Description = "Ask before attaching it" };
        var byPort = new Option<bool>("--port") { Description = "Match any device on this port" };
        var byDevice = new Option<bool>("--device") { Description = "Match this device on any port" };
        var ro = new Option<bool>("--ro") { Description = "Read-only (block devices)" };
        var options = new Option<string[]>("--option", "-o") { Description = "NAME=VALUE device option (repeatable)" };
        var command = new Command("assign", $"Assign a {devclass.ApiName()} device to a qube (attached at each start)");
        command.Aliases.Add("s");
        command.Arguments.Add(vm);
        command.Arguments.Add(device);
        foreach (var option in new Option[] { required, ask, byPort, byDevice, ro, options })
            command.Options.Add(option);
        command.SetQvmAction(context, async inv =>
        {
            if (inv.Get(required) && inv.Get(ask))
                throw new QvmUsageException("--required and --ask are mutually exclusive");
            if (inv.Get(byPort) && inv.Get(byDevice))
                throw new QvmUsageException("--port and --device are mutually exclusive");
            var frontend = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var dev = ParseDevice(inv.Get(device)!);
            if (inv.Get(byPort))
                dev = dev with { DeviceId = DeviceId.Any };
            else
            {
                dev = await ConcreteAsync(inv, devclass, dev).ConfigureAwait(false);
                if (inv.Get(byDevice))
                    dev = dev with { Port = new DevicePort(dev.Backend, DevicePort.Wildcard) };
            }
            var mode = inv.Get(required) ? AssignmentMode.Required : inv.Get(ask) ? AssignmentMode.AskToAttach : AssignmentMode.AutoAttach;
            var assignment = new DeviceAssignment(devclass, dev, frontend, mode, ParseOptions(inv.Get(options) ?? [], inv.Get(ro)));
            await inv.Api.CallAsync(Method(devclass, "Assign"), frontend, dev.ToApiArgument(), assignment.Serialize(), inv.Ct).ConfigureAwait(false);
            return Qvm.ExitOk;
        });
        return command;
    }

    private static Command Unassign(QvmContext context, DeviceClass devclass)
    {
        var vm = VmArgument();
        var device = DeviceArgument();
        var command = new Command("unassign", $"Remove a {devclass.ApiName()} device assignment");
        command.Aliases.Add("u");
        command.Arguments.Add(vm);
        command.Arguments.Add(device);
        command.SetQvmAction(context, async inv =>
        {
            var frontend = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var dev = ParseDevice(inv.Get(device)!);
            // The assignment is identified as it was made: find it among the qube's assignments by port.
            var match = (await TiesAsync(inv, devclass, frontend, "Assigned").ConfigureAwait(false))
                .FirstOrDefault(t => t.Backend == dev.Backend && t.Port == dev.PortId && (dev.DeviceId.IsAny || t.DeviceId == dev.DeviceId.Value));
            if (match is not null)
                dev = new VirtualDevice(match.Backend, match.Port, match.DeviceId);
            await inv.Api.CallAsync(Method(devclass, "Unassign"), frontend, dev.ToApiArgument(), ct: inv.Ct).ConfigureAwait(false);
            return Qvm.ExitOk;
        });
        return command;
    }

    private static Command Info(QvmContext context, DeviceClass devclass)
    {
        var device = DeviceArgument();
        var output = Qvm.OutputOption();
        var command = new Command("info", $"Show what a {devclass.ApiName()} device's backend reports about it");
        command.Aliases.Add("i");
        command.Arguments.Add(device);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var dev = ParseDevice(inv.Get(device)!);
            await inv.ResolveAsync(dev.Backend).ConfigureAwait(false);
            var found = (await AvailableAsync(inv, devclass, dev.Backend).ConfigureAwait(false)).FirstOrDefault(d => d.Port == dev.PortId)
                ?? throw new QvmRuntimeException($"no such device: {dev.Port}");
            var pairs = new List<KeyValuePair<string, string>> { new("device", $"{found.Backend}:{found.Port}"), new("description", found.Description) };
            pairs.AddRange(found.Fields.OrderBy(f => f.Key, StringComparer.Ordinal));
            FeaturesCommand.WriteMap(inv, output, pairs);
            return Qvm.ExitOk;
        });
        return command;
    }
}
