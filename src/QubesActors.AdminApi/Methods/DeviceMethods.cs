using System.Collections.Immutable;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Backend;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>
/// admin.deviceclass.List, admin.vm.device.&lt;class&gt;.* for every class, and admin.vm.device.denied.*
/// (docs/qubes-semantics.md §5). Arguments are <c>BACKEND+PORT[+DEVICE_ID]</c>; the collection keys devices
/// by <c>BACKEND:PORT</c>, so a device id in an argument must match the device found there.
/// </summary>
public static class DeviceMethods
{
    /// <summary>The qube property that holds the denied interface codes, concatenated (upstream <c>devices_denied</c>).</summary>
    public const string DeniedProperty = "devices_denied";

    public static IEnumerable<AdminMethod> All =>
    [
        Read("admin.deviceclass.List", DestinationKind.AdminVm, (_, _) => Ok(Lines(DeviceClasses.All.Select(c => c.ApiName()))), scope: MethodScope.Global),
        .. DeviceClasses.All.SelectMany(ForClass),
        Read("admin.vm.device.denied.List", DestinationKind.Any, (call, _) => Ok(Lines(Denied(call)))),
        Write("admin.vm.device.denied.Add", DestinationKind.Any, DenyAdd, payload: Presence.Required),
        Write("admin.vm.device.denied.Remove", DestinationKind.Any, DenyRemove, payload: Presence.Required),
    ];

    private static IEnumerable<AdminMethod> ForClass(DeviceClass devclass)
    {
        var name = devclass.ApiName();
        var prefix = $"admin.vm.device.{name}";
        return
        [
            Read($"{prefix}.Available", DestinationKind.Any, (call, _) => Ok(Available(call, devclass)), arg: Presence.Optional),
            Read($"{prefix}.Assigned", DestinationKind.Any, (call, _) => Ok(Listing(call, devclass, call.Dest.Assignments)), arg: Presence.Optional),
            Read($"{prefix}.Attached", DestinationKind.Any, (call, _) => Ok(Listing(call, devclass, call.Dest.Attachments)), arg: Presence.Optional),
            Write($"{prefix}.Assign", DestinationKind.Any, (call, ct) => Assign(call, devclass, ct), arg: Presence.Required, payload: Presence.Optional),
            Write($"{prefix}.Unassign", DestinationKind.Any, (call, ct) =>
                Send(call, new QubesProtocol.UnassignDevice(call.Dest.Name, name, Address(call, devclass).Key, call.Caller), ct), arg: Presence.Required),
            Write($"{prefix}.Attach", DestinationKind.Any, (call, ct) => Attach(call, devclass, ct), arg: Presence.Required, payload: Presence.Optional),
            Write($"{prefix}.Detach", DestinationKind.Any, (call, ct) =>
                Send(call, new QubesProtocol.DetachDevice(call.Dest.Name, name, Address(call, devclass).Key, call.Caller), ct), arg: Presence.Required),
            Write($"{prefix}.Set.assignment", DestinationKind.Any, (call, ct) =>
                Send(call, new QubesProtocol.SetAssignmentMode(call.Dest.Name, name, Address(call, devclass).Key, call.UntrustedPayloadAscii(), call.Caller), ct),
                arg: Presence.Required, payload: Presence.Required),
        ];
    }

    /// <summary>An argument resolved to the collection's key, with the device's identity when the backend exposes it.</summary>
    private sealed record ResolvedAddress(string Key, VirtualDevice Device, BackendDevice? Exposed);

    private static ResolvedAddress Address(AdminCall call, DeviceClass devclass)
    {
        var device = VirtualDevice.ParseApiArgument(call.Arg);
        if (device.Port.IsAnyBackend || device.Port.IsAnyPort)
            throw new ProtocolError("Devices are addressed by backend and port here; '*' is not supported");
        var key = device.Port.ToString();
        var exposed = Exposed(call.Snapshot, devclass).FirstOrDefault(d => d.Address == key);
        if (exposed is not null && !device.DeviceId.IsAny && device.DeviceId.Value != exposed.DeviceId)
            throw new UnrecognizedDevice($"Device identity '{device.DeviceId}' does not match the device at {key} ('{exposed.DeviceId}')");
        return new ResolvedAddress(key, device, exposed);
    }

    private static IEnumerable<BackendDevice> Exposed(QubesProtocol.CollectionSnapshot snapshot, DeviceClass devclass) =>
        snapshot.AvailableDevices.Values.SelectMany(d => d).Where(d => d.DeviceClass == devclass.ApiName());

    /// <summary>Devices the destination exposes, with the qube each is attached to.</summary>
    private static string Available(AdminCall call, DeviceClass devclass)
    {
        var attachedTo = call.State.Qubes.Values
            .SelectMany(q => q.Attachments.Values.Select(a => (a.Key, Frontend: q.Name)))
            .ToDictionary(x => x.Key, x => x.Frontend, StringComparer.Ordinal);
        var devices = call.Snapshot.AvailableDevices.GetValueOrDefault(call.Dest.Name, [])
            .Where(d => d.DeviceClass == devclass.ApiName())
            .Where(d => call.Arg.Length == 0 || d.Port == call.Arg)
            .Select(d => Info(devclass, d) with { Attachment = attachedTo.GetValueOrDefault($"{d.DeviceClass}:{d.Address}") });
        return DeviceInfo.FormatAvailableListing(devices);
    }

    public static DeviceInfo Info(DeviceClass devclass, BackendDevice d) =>
        new(devclass, new DevicePort(d.Backend, d.Port), new DeviceId(d.DeviceId))
        {
            Vendor = d.Vendor,
            Product = d.Product,
            Name = d.Description.Length > 0 ? d.Description : null,
            Interfaces = d.Interfaces,
        };

    /// <summary>
    /// Assigned or attached devices of the destination, optionally one (by argument). An attached device that is
    /// also assigned is listed with its assignment (mode and options), as qubesd does; <c>manual</c> is for the rest.
    /// </summary>
    private static string Listing(AdminCall call, DeviceClass devclass, ImmutableSortedDictionary<string, DeviceBinding> bindings)
    {
        var selected = call.Arg.Length == 0 ? null : VirtualDevice.ParseApiArgument(call.Arg);
        var exposed = Exposed(call.Snapshot, devclass).ToDictionary(d => d.Address, StringComparer.Ordinal);
        var assignments = bindings.Values
            .Where(b => b.DeviceClass == devclass.ApiName())
            .Select(b => call.Dest.Assignments.TryGetValue(b.Key, out var assigned) ? assigned : b)
            .Select(b =>
            {
                var port = VirtualDevice.ParseCli(b.Device).Port;
                var id = exposed.TryGetValue(b.Device, out var d) ? new DeviceId(d.DeviceId) : DeviceId.Any;
                return new DeviceAssignment(devclass, new VirtualDevice(port, id), call.Dest.Name, AssignmentModes.Parse(b.Mode), Options(b.Options));
            })
            .Where(a => selected is null || selected.Matches(a.Device) || a.Device.Port == selected.Port);
        return DeviceAssignment.FormatListing(assignments);
    }

    private static DeviceOptions Options(ImmutableSortedDictionary<string, string> options) =>
        options.Aggregate(DeviceOptions.Empty, (o, kv) => o.With(kv.Key, kv.Value));

    private static ImmutableSortedDictionary<string, string> Options(DeviceOptions options) =>
        options.ToImmutableSortedDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    private static Task<AdminReply> Assign(AdminCall call, DeviceClass devclass, CancellationToken ct)
    {
        var address = Address(call, devclass);
        var assignment = DeviceAssignment.Parse(call.UntrustedPayloadAscii(), devclass, address.Device);
        CheckFrontend(call, assignment);
        return Send(call, new QubesProtocol.AssignDevice(call.Dest.Name, devclass.ApiName(), address.Key, assignment.Mode.ApiName(),
            Options(assignment.Options), call.Caller), ct);
    }

    private static Task<AdminReply> Attach(AdminCall call, DeviceClass devclass, CancellationToken ct)
    {
        var address = Address(call, devclass);
        var assignment = DeviceAssignment.Parse(call.UntrustedPayloadAscii(), devclass, address.Device);
        CheckFrontend(call, assignment);
        if (assignment.Mode != AssignmentMode.Manual)
            throw new ProtocolError("Attach takes a manual assignment; use Assign for persistent ones");
        if (address.Exposed is { } exposed && !call.DestIsAdmin)
            CheckDenied(call, devclass, exposed);
        return Send(call, new QubesProtocol.AttachDevice(call.Dest.Name, devclass.ApiName(), address.Key, Options(assignment.Options), call.Caller), ct);
    }

    private static void CheckFrontend(AdminCall call, DeviceAssignment assignment)
    {
        if (assignment.Frontend is { } frontend && frontend != call.Dest.Name)
            throw new ProtocolError($"Assignment for {frontend} sent to {call.Dest.Name}");
    }

    /// <summary>
    /// A manual attach of a device whose interfaces the frontend denies is refused (upstream vetoes it before the
    /// attach). A device that reports no interfaces counts as unknown (<c>?******</c>).
    /// </summary>
    private static void CheckDenied(AdminCall call, DeviceClass devclass, BackendDevice device)
    {
        var denied = Denied(call);
        if (denied.Count == 0)
            return;
        var interfaces = Info(devclass, device).Interfaces;
        if (DeviceInterfaces.FirstDenied(denied, interfaces.Length > 0 ? interfaces : DeviceInterfaces.UnknownCode) is { } code)
            throw new PermissionDenied($"Device {device.Address} has interface {code} denied for {call.Dest.Name}");
    }

    private static IReadOnlyList<string> Denied(AdminCall call) =>
        call.State.Effective(call.Dest, DeniedProperty) is { Length: > 0 } value ? DeviceInterfaces.Split(value) : [];

    /// <summary>Payload: interface codes or prefixes, concatenated or space separated; each is padded to a full pattern.</summary>
    private static IReadOnlyList<string> UntrustedCodes(AdminCall call) =>
        call.UntrustedPayloadAscii().Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries)
            .SelectMany(chunk => chunk.Length > DeviceInterfaces.CodeLength && chunk.Length % DeviceInterfaces.CodeLength == 0
                ? DeviceInterfaces.Split(chunk)
                : [DeviceInterfaces.NormalizePattern(chunk)])
            .ToList();

    private static Task<AdminReply> DenyAdd(AdminCall call, CancellationToken ct)
    {
        var current = Denied(call);
        var added = current.Concat(UntrustedCodes(call).Where(c => !current.Contains(c))).Distinct().ToList();
        if (added.Count == current.Count)
            return Task.FromResult(AdminReply.Empty);
        return Send(call, new QubesProtocol.SetProperty(call.Dest.Name, DeniedProperty, string.Concat(added), call.Caller), ct);
    }

    private static Task<AdminReply> DenyRemove(AdminCall call, CancellationToken ct)
    {
        var current = Denied(call);
        List<string> kept;
        if (call.UntrustedPayloadAscii().Trim() == "all")
            kept = [];
        else
        {
            var removed = UntrustedCodes(call);
            if (removed.FirstOrDefault(c => !current.Contains(c)) is { } absent)
                throw new QubesValueError($"Interface {absent} is not denied for {call.Dest.Name}");
            kept = [.. current.Where(c => !removed.Contains(c))];
        }
        if (kept.Count == current.Count)
            return Task.FromResult(AdminReply.Empty);
        return kept.Count == 0
            ? Send(call, new QubesProtocol.ResetProperty(call.Dest.Name, DeniedProperty, call.Caller), ct)
            : Send(call, new QubesProtocol.SetProperty(call.Dest.Name, DeniedProperty, string.Concat(kept), call.Caller), ct);
    }
}
