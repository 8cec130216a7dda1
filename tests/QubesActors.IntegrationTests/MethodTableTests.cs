using System.Text;
using QubesActors.AdminApi.Methods;
using QubesActors.AdminApi.Wire;
using QubesActors.Core.Errors;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;
using Xunit;

namespace QubesActors.IntegrationTests;

/// <summary>The method table and the generic validation of §6.1, against a fake collection.</summary>
public sealed class MethodTableTests
{
    private readonly FakeGateway _qubes = new();
    private readonly AdminDispatcher _dispatcher;

    public MethodTableTests() => _dispatcher = new AdminDispatcher(_qubes, MethodTable.Default);

    private sealed class NoFrames : IFrameSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> frame, CancellationToken ct) => ValueTask.CompletedTask;
    }

    private Task<AdminReply> Call(string method, string dest, string arg = "", string payload = "", string source = "dom0") =>
        _dispatcher.DispatchAsync(new AdminRequest(method, arg, source, dest, Encoding.ASCII.GetBytes(payload)), new Caller(source, 1000, 42), new NoFrames(), CancellationToken.None);

    private async Task<string> Ok(string method, string dest, string arg = "", string payload = "") =>
        Assert.IsType<AdminReply.Ok>(await Call(method, dest, arg, payload)).Content;

    private async Task<QubesError> Error(string method, string dest, string arg = "", string payload = "", string source = "dom0") =>
        Assert.IsType<AdminReply.Failed>(await Call(method, dest, arg, payload, source)).Error;

    public static readonly TheoryData<string> Required =
    [
        "admin.vmclass.List", "admin.vm.List",
        "admin.vm.property.List", "admin.vm.property.Get", "admin.vm.property.GetAll", "admin.vm.property.Set", "admin.vm.property.Reset",
        "admin.property.List", "admin.property.Get", "admin.property.Set", "admin.property.Reset",
        "admin.vm.Create.AppVM", "admin.vm.Create.TemplateVM", "admin.vm.Create.StandaloneVM", "admin.vm.Create.DispVM",
        "admin.vm.Remove", "admin.vm.Start", "admin.vm.Shutdown", "admin.vm.Kill", "admin.vm.Pause", "admin.vm.Unpause", "admin.vm.CurrentState",
        "admin.vm.feature.List", "admin.vm.feature.Get", "admin.vm.feature.Set", "admin.vm.feature.Remove",
        "admin.vm.tag.List", "admin.vm.tag.Get", "admin.vm.tag.Set", "admin.vm.tag.Remove", "admin.Events",
        "admin.vm.property.GetDefault", "admin.vm.property.Help", "admin.property.GetAll", "admin.property.GetDefault", "admin.property.Help",
        "admin.vm.CreateDisposable", "admin.vm.Suspend", "admin.vm.Resume", "admin.vm.Stats",
        "admin.vm.feature.CheckWithTemplate", "admin.vm.feature.CheckWithNetvm", "admin.vm.feature.CheckWithAdminVM", "admin.vm.feature.CheckWithTemplateAndAdminVM",
        "admin.vm.firewall.Get", "admin.vm.firewall.Set", "admin.vm.firewall.Reload",
        "admin.deviceclass.List", "admin.vm.device.denied.List", "admin.vm.device.denied.Add", "admin.vm.device.denied.Remove",
        .. new[] { "pci", "block", "usb", "mic" }.SelectMany(c => new[] { "Available", "Assigned", "Attached", "Assign", "Unassign", "Attach", "Detach", "Set.assignment" }
            .Select(m => $"admin.vm.device.{c}.{m}")),
        "admin.label.List", "admin.label.Get", "admin.label.Index", "admin.label.Create", "admin.label.Remove",
        "admin.vm.notes.Get", "admin.vm.notes.Set",
    ];

    [Theory]
    [InlineData("admin.vm.List", "dom0")]
    [InlineData("admin.vm.property.Get", "work")]
    [InlineData("admin.vm.Start", "sys-net")]
    public async Task Calls_from_a_qube_are_denied_as_by_the_default_policy(string method, string dest)
    {
        var e = await Error(method, dest, method.EndsWith(".Get", StringComparison.Ordinal) ? "netvm" : "", source: "work");
        Assert.Equal(("PermissionDenied", $"{method} from work to {dest} denied by policy"), (e.QubesClassName, e.Message));
        Assert.Empty(_qubes.Commands);
    }

    [Theory]
    [MemberData(nameof(Required))]
    public void Table_has_every_method_of_this_issue(string name) => Assert.NotNull(MethodTable.Default.Find(name));

    [Fact]
    public void Rows_describe_scope_access_destination_arg_and_payload()
    {
        var t = MethodTable.Default;
        Assert.Equal((MethodScope.Global, MethodAccess.Read, DestinationKind.AdminVm, Presence.None, Presence.None),
            Shape(t.Find("admin.vmclass.List")!));
        Assert.Equal((MethodScope.Local, MethodAccess.Write, DestinationKind.Any, Presence.Required, Presence.Optional),
            Shape(t.Find("admin.vm.property.Set")!));
        Assert.Equal((MethodScope.Global, MethodAccess.Write, DestinationKind.AdminVm, Presence.Optional, Presence.Required),
            Shape(t.Find("admin.vm.Create.AppVM")!));
        Assert.Equal(Presence.None, t.Find("admin.vm.Create.TemplateVM")!.Arg);
        Assert.Equal((MethodAccess.Execute, Presence.Optional), (t.Find("admin.vm.Shutdown")!.Access, t.Find("admin.vm.Shutdown")!.Arg));
        Assert.True(t.Find("admin.Events")!.Streams);
        // qubesd's own calls, and the policy Admin API (§6.2)
        Assert.All(t.Methods, m => Assert.True(m.Name.StartsWith("admin.", StringComparison.Ordinal) || m.Name.StartsWith("policy.", StringComparison.Ordinal), m.Name));

        static (MethodScope, MethodAccess, DestinationKind, Presence, Presence) Shape(AdminMethod m) => (m.Scope, m.Access, m.Destination, m.Arg, m.Payload);
    }

    [Fact]
    public void A_method_registered_twice_is_refused()
    {
        var row = MethodTable.Default.Find("admin.vm.List")!;
        Assert.Throws<ArgumentException>(() => new MethodTable([row, row]));
    }

    [Fact]
    public async Task Unknown_method_is_a_protocol_error()
    {
        var e = await Error("admin.vm.NoSuchThing", "dom0");
        Assert.Equal(("ProtocolError", "no such method"), (e.QubesClassName, e.Message));
    }

    [Fact]
    public async Task Unknown_destination_or_source_is_QubesVMNotFoundError()
    {
        var e = await Error("admin.vm.List", "nosuch");
        Assert.Equal(("QubesVMNotFoundError", "No such domain: 'nosuch'"), (e.QubesClassName, e.Message));
        Assert.Equal("No such domain: 'ghost'", (await Error("admin.vm.List", "dom0", source: "ghost")).Message);
    }

    [Theory]
    [InlineData("admin.vmclass.List", "work", "", "", "expected destination to be AdminVM")]
    [InlineData("admin.property.Get", "work", "default_netvm", "", "expected destination to be AdminVM")]
    [InlineData("admin.vm.List", "dom0", "x", "", "unexpected argument")]
    [InlineData("admin.vm.Create.TemplateVM", "dom0", "debian-13", "name=t label=red", "unexpected argument")]
    [InlineData("admin.vm.property.Get", "work", "", "", "expected an argument")]
    [InlineData("admin.vm.List", "dom0", "", "x", "unexpected payload")]
    [InlineData("admin.vm.Create.AppVM", "dom0", "", "", "expected payload")]
    [InlineData("admin.vm.Shutdown", "work", "now", "", "invalid argument")]
    [InlineData("admin.vm.Create.AppVM", "dom0", "", "name=x", "Missing name or label")]
    [InlineData("admin.vm.Create.AppVM", "dom0", "", "name=x label=red pool=lvm", "Invalid param name")]
    [InlineData("admin.vm.Create.AppVM", "dom0", "", "name=x label=red name=y", "duplicated parameters")]
    public async Task Generic_validation_refuses_with_a_protocol_error(string method, string dest, string arg, string payload, string message)
    {
        var e = await Error(method, dest, arg, payload);
        Assert.Equal("ProtocolError", e.QubesClassName);
        Assert.Contains(message, e.Message);
        Assert.Empty(_qubes.Commands);
    }

    [Fact]
    public async Task Vm_list_is_dom0_first_then_by_name_one_line_per_qube()
    {
        Assert.Equal(
            "dom0 class=AdminVM state=Running uuid=00000000-0000-0000-0000-000000000000\n" +
            "debian-13 class=TemplateVM state=Halted uuid=11111111-1111-1111-1111-111111111111\n" +
            "sys-net class=AppVM state=Running uuid=22222222-2222-2222-2222-222222222222\n" +
            "work class=AppVM state=Halted uuid=33333333-3333-3333-3333-333333333333\n",
            await Ok("admin.vm.List", "dom0"));
        Assert.Equal("work class=AppVM state=Halted uuid=33333333-3333-3333-3333-333333333333\n", await Ok("admin.vm.List", "work"));
    }

    [Fact]
    public async Task Vmclass_list_is_the_sorted_class_names() =>
        Assert.Equal("AdminVM\nAppVM\nDispVM\nStandaloneVM\nTemplateVM\n", await Ok("admin.vmclass.List", "dom0"));

    [Fact]
    public async Task Property_get_reports_default_type_and_value()
    {
        Assert.Equal("default=True type=vm sys-net", await Ok("admin.vm.property.Get", "work", "netvm"));
        Assert.Equal("default=False type=vm debian-13", await Ok("admin.vm.property.Get", "work", "template"));
        Assert.Equal("default=False type=int 300", await Ok("admin.vm.property.Get", "sys-net", "memory"));
        Assert.Equal("default=True type=vm ", await Ok("admin.vm.property.Get", "debian-13", "netvm"));
        Assert.Equal("default=True type=bool False", await Ok("admin.vm.property.Get", "work", "provides_network"));
        Assert.Equal("default=False type=label blue", await Ok("admin.vm.property.Get", "work", "label"));
        Assert.Equal("default=False type=vm sys-net", await Ok("admin.property.Get", "dom0", "default_netvm"));
        Assert.Equal("default=True type=int 60", await Ok("admin.property.Get", "dom0", "default_shutdown_timeout"));
        var e = await Error("admin.vm.property.Get", "work", "nonsense");
        Assert.Equal(("QubesNoSuchPropertyError", "Invalid property 'nonsense' of work"), (e.QubesClassName, e.Message));
    }

    [Fact]
    public async Task Property_list_and_get_all_cover_the_same_names()
    {
        var names = (await Ok("admin.vm.property.List", "work")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var all = (await Ok("admin.vm.property.GetAll", "work")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(names, all.Select(l => l[..l.IndexOf(' ')]));
        Assert.Contains("netvm default=True type=vm sys-net", all);
        Assert.Equal("a\\\\b\\nc", PropertyMethods.Escape("a\\b\nc"));
        Assert.Contains("default_netvm", (await Ok("admin.property.List", "dom0")).Split('\n'));
    }

    [Fact]
    public async Task Mutations_become_commands_with_the_caller()
    {
        Assert.Equal("", await Ok("admin.vm.property.Set", "work", "netvm", ""));
        Assert.Equal("", await Ok("admin.vm.Create.AppVM", "dom0", "debian-13", "name=new label=green"));
        Assert.Equal("", await Ok("admin.vm.Create.StandaloneVM", "dom0", "", "name=alone label=red"));
        Assert.Equal("", await Ok("admin.vm.Shutdown", "work", "force+wait"));
        Assert.Equal("", await Ok("admin.vm.Shutdown", "work"));
        Assert.Equal("", await Ok("admin.property.Set", "dom0", "default_netvm", "sys-net"));
        var commands = _qubes.Commands.ToArray();
        // The caller carries the call that made the command: the audit record names it.
        Assert.Equal(new QubesProtocol.SetProperty("work", "netvm", "", new Caller("dom0", 1000, 42, "admin.vm.property.Set")), commands[0]);
        var create = Assert.IsType<QubesProtocol.CreateQube>(commands[1]);
        Assert.Equal((QubeClass.AppVM, "new", "green", "debian-13"), (create.Class, create.Name, create.Label, create.Template));
        Assert.Null(Assert.IsType<QubesProtocol.CreateQube>(commands[2]).Template);
        Assert.Equal(new QubesProtocol.ShutdownQube("work", true, true, new Caller("dom0", 1000, 42, "admin.vm.Shutdown")), commands[3]);
        Assert.Equal(new QubesProtocol.ShutdownQube("work", false, false, new Caller("dom0", 1000, 42, "admin.vm.Shutdown")), commands[4]);
        Assert.IsType<QubesProtocol.SetGlobalProperty>(commands[5]);
    }

    [Fact]
    public async Task A_refused_command_is_answered_with_its_qubes_error()
    {
        _qubes.Answer = _ => new QubesProtocol.Refused(QubesVMNotStartedError.Default("work"));
        var e = await Error("admin.vm.Kill", "work");
        Assert.Equal(("QubesVMNotStartedError", "Domain is powered off: 'work'"), (e.QubesClassName, e.Message));
    }

    [Fact]
    public async Task Non_ascii_payload_is_a_protocol_error()
    {
        var reply = await _dispatcher.DispatchAsync(new AdminRequest("admin.vm.feature.Set", "x", "dom0", "work", new byte[] { 0xc3, 0xa9 }),
            Caller.Dom0, new NoFrames(), CancellationToken.None);
        Assert.Equal("ProtocolError", Assert.IsType<AdminReply.Failed>(reply).Error.QubesClassName);
    }

    [Fact]
    public async Task Features_tags_and_current_state()
    {
        Assert.Equal("gui\nos\n", await Ok("admin.vm.feature.List", "work"));
        Assert.Equal("Linux", await Ok("admin.vm.feature.Get", "work", "os"));
        var e = await Error("admin.vm.feature.Get", "work", "nope");
        Assert.Equal(("QubesFeatureNotFoundError", "Feature not set for domain work: nope"), (e.QubesClassName, e.Message));
        Assert.Equal("created-by-dom0\nwork-tag\n", await Ok("admin.vm.tag.List", "work"));
        Assert.Equal("1", await Ok("admin.vm.tag.Get", "work", "work-tag"));
        Assert.Equal("0", await Ok("admin.vm.tag.Get", "work", "other"));
        Assert.Equal("mem=307200 mem_static_max=4096000 cputime=0 power_state=Running", await Ok("admin.vm.CurrentState", "sys-net"));
        Assert.Equal("mem=0 mem_static_max=0 cputime=0 power_state=Halted", await Ok("admin.vm.CurrentState", "work"));
    }
}
