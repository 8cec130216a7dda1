using QubesActors.AdminApi.Wire;
using Xunit;

namespace QubesActors.IntegrationTests.AdminApi;

/// <summary>
/// Every Admin API method of §6.2 (but volumes, pools, backups) against a real qubesd on a temp socket:
/// the exact reply bytes on success and the error class and message of each documented failure.
/// </summary>
public sealed class AdminMethodsTests(AdminDaemonFixture qubes) : IClassFixture<AdminDaemonFixture>
{
    [Fact]
    public async Task Vmclass_list_names_every_class_one_per_line()
    {
        Assert.Equal("AdminVM\nAppVM\nDispVM\nStandaloneVM\nTemplateVM\n", await qubes.Ok("admin.vmclass.List", "dom0"));
        var e = await qubes.Error("admin.vmclass.List", "work");
        Assert.Equal(("ProtocolError", "expected destination to be AdminVM"), (e.ClassName, e.Message));
    }

    [Fact]
    public async Task Vm_list_puts_dom0_first_and_a_qube_destination_lists_only_itself()
    {
        var lines = (await qubes.Ok("admin.vm.List", "dom0")).TrimEnd('\n').Split('\n');
        Assert.StartsWith("dom0 class=AdminVM state=Running uuid=00000000-0000-0000-0000-000000000000", lines[0]);
        Assert.Equal(lines.Skip(1).OrderBy(l => l, StringComparer.Ordinal), lines.Skip(1));
        var work = await qubes.Ok("admin.vm.List", "work");
        Assert.Matches(@"^work class=AppVM state=Halted uuid=[0-9a-f-]{36}\n$", work);
        var e = await qubes.Error("admin.vm.List", "nosuch");
        Assert.Equal(("QubesVMNotFoundError", "No such domain: 'nosuch'"), (e.ClassName, e.Message));
    }

    [Fact]
    public async Task Property_list_get_getall_set_reset_and_their_refusals()
    {
        var name = await qubes.NewAppVm("pr");
        var names = (await qubes.Ok("admin.vm.property.List", name)).TrimEnd('\n').Split('\n');
        Assert.Contains("netvm", names);
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.Equal("default=True type=int 400", await qubes.Ok("admin.vm.property.Get", name, "memory"));
        await qubes.Ok("admin.vm.property.Set", name, "memory", "800");
        Assert.Equal("default=False type=int 800", await qubes.Ok("admin.vm.property.Get", name, "memory"));
        Assert.Equal(("QubesPropertyValueError", $"Invalid value 'lots' for property 'memory' of {name}"),
            Pair(await qubes.Error("admin.vm.property.Set", name, "memory", "lots")));
        Assert.Equal(("QubesValueError", "The work qube does not provide network"), Pair(await qubes.Error("admin.vm.property.Set", name, "netvm", "work")));
        Assert.Equal(("QubesNoSuchPropertyError", $"Invalid property 'nosuch' of {name}"), Pair(await qubes.Error("admin.vm.property.Set", name, "nosuch", "1")));
        await qubes.Ok("admin.vm.property.Reset", name, "memory");
        Assert.Equal("default=True type=int 400", await qubes.Ok("admin.vm.property.Get", name, "memory"));
        // GetAll: one line per property, newlines and backslashes escaped.
        await qubes.Ok("admin.vm.property.Set", name, "kernelopts", "a\\b");
        var all = await qubes.Ok("admin.vm.property.GetAll", name);
        Assert.Contains("kernelopts default=False type=str a\\\\b\n", all);
        Assert.Contains($"name default=False type=str {name}\n", all);
        Assert.Equal(names.Length, all.Count(c => c == '\n'));
        Assert.Equal(("ProtocolError", "unexpected argument"), Pair(await qubes.Error("admin.vm.property.GetAll", name, "memory")));
        // Global properties.
        Assert.Equal(("QubesPropertyValueError", "Invalid value 'soon' for property 'default_shutdown_timeout' of dom0"),
            Pair(await qubes.Error("admin.property.Set", "dom0", "default_shutdown_timeout", "soon")));
        await qubes.Ok("admin.property.Set", "dom0", "stats_interval", "5");
        Assert.Equal("default=False type=int 5", await qubes.Ok("admin.property.Get", "dom0", "stats_interval"));
        await qubes.Ok("admin.property.Reset", "dom0", "stats_interval");
        Assert.Equal("default=True type=int 3", await qubes.Ok("admin.property.Get", "dom0", "stats_interval"));
    }

    [Fact]
    public async Task Property_get_default_reports_the_value_a_reset_would_give()
    {
        var name = await qubes.NewAppVm("gd");
        Assert.Equal("type=vm sys-firewall", await qubes.Ok("admin.vm.property.GetDefault", name, "netvm"));
        await qubes.Ok("admin.vm.property.Set", name, "netvm", "");
        Assert.Equal("default=False type=vm ", await qubes.Ok("admin.vm.property.Get", name, "netvm"));
        Assert.Equal("type=vm sys-firewall", await qubes.Ok("admin.vm.property.GetDefault", name, "netvm"));
        Assert.Equal("type=int 60", await qubes.Ok("admin.vm.property.GetDefault", name, "shutdown_timeout"));
        // No default: the write-once and the explicit-only properties.
        Assert.Equal("", await qubes.Ok("admin.vm.property.GetDefault", name, "name"));
        var e = await qubes.Error("admin.vm.property.GetDefault", name, "nosuch");
        Assert.Equal(("QubesNoSuchPropertyError", $"Invalid property 'nosuch' of {name}"), (e.ClassName, e.Message));
        Assert.Equal(("ProtocolError", "expected an argument"), Pair(await qubes.Error("admin.vm.property.GetDefault", name)));
    }

    [Fact]
    public async Task Property_help_returns_the_documentation()
    {
        Assert.Equal("Time in seconds for shutdown of the VM, after which VM may be forcefully powered off.",
            await qubes.Ok("admin.vm.property.Help", "work", "shutdown_timeout"));
        Assert.Equal("Default NetVM for AppVMs. Initial state is `None`, which means that AppVMs are not connected to the Internet.",
            await qubes.Ok("admin.property.Help", "dom0", "default_netvm"));
        Assert.Equal("QubesNoSuchPropertyError", (await qubes.Error("admin.property.Help", "dom0", "nosuch")).ClassName);
    }

    [Fact]
    public async Task Global_property_get_default()
    {
        Assert.Equal("type=int 60", await qubes.Ok("admin.property.GetDefault", "dom0", "default_shutdown_timeout"));
        // default_netvm has no default (the layout sets it).
        Assert.Equal("", await qubes.Ok("admin.property.GetDefault", "dom0", "default_netvm"));
        Assert.Equal("default=False type=vm sys-firewall", await qubes.Ok("admin.property.Get", "dom0", "default_netvm"));
        Assert.Equal(("ProtocolError", "expected destination to be AdminVM"), Pair(await qubes.Error("admin.property.GetDefault", "work", "maxmem")));
    }

    [Fact]
    public async Task Create_tags_the_creator_and_refuses_taken_names_unknown_templates_and_labels()
    {
        var name = await qubes.NewAppVm("cr");
        Assert.Equal("1", await qubes.Ok("admin.vm.tag.Get", name, "created-by-dom0"));
        // template has no default: set explicitly at creation (from default_template).
        Assert.Equal("default=False type=vm debian-13", await qubes.Ok("admin.vm.property.Get", name, "template"));
        Assert.Equal(("QubesVMAlreadyExistsError", $"Qube already exists: {name}"),
            Pair(await qubes.Error("admin.vm.Create.AppVM", "dom0", "", $"name={name} label=red")));
        Assert.Equal(("QubesVMNotFoundError", "No such domain: 'nosuch'"),
            Pair(await qubes.Error("admin.vm.Create.AppVM", "dom0", "nosuch", "name=cr-x1 label=red")));
        Assert.Equal(("QubesLabelNotFoundError", "Label does not exist: mauve"),
            Pair(await qubes.Error("admin.vm.Create.AppVM", "dom0", "", "name=cr-x2 label=mauve")));
        Assert.Equal(("ProtocolError", "expected payload"), Pair(await qubes.Error("admin.vm.Create.AppVM", "dom0")));
        Assert.Equal(("ProtocolError", "unexpected argument"),
            Pair(await qubes.Error("admin.vm.Create.TemplateVM", "dom0", "debian-13", "name=cr-x3 label=red")));
    }

    [Fact]
    public async Task Create_disposable_from_a_disposable_template_or_the_callers_default()
    {
        var named = await qubes.Ok("admin.vm.CreateDisposable", "default-dvm");
        Assert.Matches(@"^disp\d{1,4}$", named);
        Assert.Equal($"{named} class=DispVM state=Halted", (await qubes.Ok("admin.vm.List", named))[..$"{named} class=DispVM state=Halted".Length]);
        Assert.Equal("default=False type=vm default-dvm", await qubes.Ok("admin.vm.property.Get", named, "template"));
        var byDefault = await qubes.Ok("admin.vm.CreateDisposable", "dom0");
        Assert.Equal("default=False type=vm default-dvm", await qubes.Ok("admin.vm.property.Get", byDefault, "template"));
        var byUuid = await qubes.Ok("admin.vm.CreateDisposable", "default-dvm", "", "uuid");
        Assert.Matches(@"^uuid:[0-9a-f-]{36}$", byUuid);
        Assert.Contains($"uuid={byUuid[5..]}", await qubes.Ok("admin.vm.List", "dom0"));
        var e = await qubes.Error("admin.vm.CreateDisposable", "work");
        Assert.Equal(("QubesValueError", "Refusing to create disposable out of app qube which has template_for_dispvms=False"), Pair(e));
        foreach (var disp in new[] { named, byDefault })
            await qubes.Ok("admin.vm.Remove", disp);
    }

    [Fact]
    public async Task Lifecycle_calls_and_their_refusals()
    {
        var name = await qubes.NewAppVm("lc");
        Assert.Equal(("QubesVMNotStartedError", $"Domain is powered off: '{name}'"), Pair(await qubes.Error("admin.vm.Kill", name)));
        Assert.Equal(("QubesVMNotRunningError", $"Domain not running (either powered off or paused): '{name}'"), Pair(await qubes.Error("admin.vm.Pause", name)));
        await qubes.Ok("admin.vm.Start", name);
        Assert.Equal("", await qubes.Ok("admin.vm.Start", name)); // a second start is a silent no-op (§10.1)
        Assert.EndsWith("power_state=Running", await qubes.Ok("admin.vm.CurrentState", name));
        Assert.Equal(("QubesVMNotPausedError", $"Domain is not paused: '{name}'"), Pair(await qubes.Error("admin.vm.Unpause", name)));
        await qubes.Ok("admin.vm.Pause", name);
        Assert.Equal("mem=409600 mem_static_max=4096000 cputime=0 power_state=Paused", await qubes.Ok("admin.vm.CurrentState", name));
        await qubes.Ok("admin.vm.Unpause", name);
        await qubes.Ok("admin.vm.Suspend", name);
        Assert.EndsWith("power_state=Suspended", await qubes.Ok("admin.vm.CurrentState", name));
        await qubes.Ok("admin.vm.Resume", name);
        Assert.Equal(("ProtocolError", "invalid argument for admin.vm.Shutdown: now"), Pair(await qubes.Error("admin.vm.Shutdown", name, "now")));
        await qubes.Ok("admin.vm.Shutdown", name, "wait");
        Assert.Equal("mem=0 mem_static_max=0 cputime=0 power_state=Halted", await qubes.Ok("admin.vm.CurrentState", name));
        await qubes.Ok("admin.vm.Start", name);
        await qubes.Ok("admin.vm.Kill", name);
        await qubes.Ok("admin.vm.Remove", name);
        Assert.Equal("QubesVMNotFoundError", (await qubes.Error("admin.vm.List", name)).ClassName);
    }

    [Fact]
    public async Task A_netvm_whose_only_running_client_is_dom0_shuts_down_without_force()
    {
        await qubes.Ok("admin.vm.Shutdown", "sys-firewall", "wait");
        Assert.EndsWith("power_state=Halted", await qubes.Ok("admin.vm.CurrentState", "sys-firewall"));
        await qubes.Ok("admin.vm.Start", "sys-firewall");
    }

    [Fact]
    public async Task A_caller_that_hangs_up_mid_call_costs_nothing_and_the_call_is_applied_whole()
    {
        var name = await qubes.NewAppVm("hu");
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
        {
            await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(qubes.Daemon.SocketPath));
            await socket.SendAsync(new AdminRequest("admin.vm.Start", "", "dom0", name, ReadOnlyMemory<byte>.Empty).Encode());
            socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            // Gone before the answer.
        }
        await AdminDaemonFixture.WaitUntilAsync(async () => (await qubes.Ok("admin.vm.CurrentState", name)).EndsWith("power_state=Running", StringComparison.Ordinal));
        // Others are served as usual meanwhile and after.
        Assert.StartsWith("dom0 class=AdminVM", await qubes.Ok("admin.vm.List", "dom0"));
        await qubes.Ok("admin.vm.Kill", name);
    }

    [Fact]
    public async Task Feature_check_with_follows_template_netvm_and_dom0()
    {
        var name = await qubes.NewAppVm("ft");
        var feature = $"f{Guid.NewGuid():N}"[..12];
        Assert.Equal(("QubesFeatureNotFoundError", $"Feature not set for domain {name}: {feature}"),
            Pair(await qubes.Error("admin.vm.feature.CheckWithTemplate", name, feature)));
        await qubes.Ok("admin.vm.feature.Set", "debian-13", feature, "from-template");
        await qubes.Ok("admin.vm.feature.Set", "sys-firewall", feature, "from-netvm");
        await qubes.Ok("admin.vm.feature.Set", "dom0", feature, "from-dom0");
        Assert.Equal("from-template", await qubes.Ok("admin.vm.feature.CheckWithTemplate", name, feature));
        Assert.Equal("from-netvm", await qubes.Ok("admin.vm.feature.CheckWithNetvm", name, feature));
        Assert.Equal("from-dom0", await qubes.Ok("admin.vm.feature.CheckWithAdminVM", name, feature));
        Assert.Equal("from-template", await qubes.Ok("admin.vm.feature.CheckWithTemplateAndAdminVM", name, feature));
        await qubes.Ok("admin.vm.feature.Set", name, feature, "own");
        Assert.Equal("own", await qubes.Ok("admin.vm.feature.CheckWithNetvm", name, feature));
        Assert.Equal(("QubesFeatureNotFoundError", $"Feature not set for domain {name}: {feature}x"),
            Pair(await qubes.Error("admin.vm.feature.Get", name, feature + "x")));
        foreach (var q in new[] { "debian-13", "sys-firewall", "dom0" })
            await qubes.Ok("admin.vm.feature.Remove", q, feature);
    }

    [Fact]
    public async Task Tags_set_get_list_remove()
    {
        var name = await qubes.NewAppVm("tg");
        await qubes.Ok("admin.vm.tag.Set", name, "audited");
        Assert.Equal("audited\ncreated-by-dom0\n", await qubes.Ok("admin.vm.tag.List", name));
        Assert.Equal("0", await qubes.Ok("admin.vm.tag.Get", name, "absent"));
        await qubes.Ok("admin.vm.tag.Remove", name, "audited");
        Assert.Equal(("QubesTagNotFoundError", $"Tag not set for domain {name}: audited"), Pair(await qubes.Error("admin.vm.tag.Remove", name, "audited")));
    }

    [Fact]
    public async Task Firewall_get_set_reload()
    {
        var name = await qubes.NewAppVm("fw");
        Assert.Equal("action=accept\n", await qubes.Ok("admin.vm.firewall.Get", name));
        // Get answers each rule in upstream's canonical form: a network dsthost becomes dst4, keys in upstream's order.
        await qubes.Ok("admin.vm.firewall.Set", name, "", "action=accept proto=tcp dstports=443-443 dsthost=10.0.0.0/8\naction=accept specialtarget=dns\naction=drop\n");
        const string rules = "action=accept dst4=10.0.0.0/8 proto=tcp dstports=443-443\naction=accept specialtarget=dns\naction=drop\n";
        Assert.Equal(rules, await qubes.Ok("admin.vm.firewall.Get", name));
        await qubes.Ok("admin.vm.firewall.Reload", name);
        var bad = await qubes.Error("admin.vm.firewall.Set", name, "", "action=maybe\n");
        Assert.Equal("QubesValueError", bad.ClassName);
        Assert.Equal(rules, await qubes.Ok("admin.vm.firewall.Get", name)); // a refused Set changes nothing
        Assert.Equal(("ProtocolError", "expected destination to not be AdminVM"), Pair(await qubes.Error("admin.vm.firewall.Get", "dom0")));
        // The empty list: everything dropped.
        await qubes.Ok("admin.vm.firewall.Set", name, "", "");
        Assert.Equal("", await qubes.Ok("admin.vm.firewall.Get", name));
    }

    [Fact]
    public async Task Device_classes_and_what_dom0_and_sys_usb_expose()
    {
        Assert.Equal("pci\nblock\nusb\nmic\n", await qubes.Ok("admin.deviceclass.List", "dom0"));
        var pci = await qubes.Ok("admin.vm.device.pci.Available", "dom0");
        Assert.StartsWith("00_14.0:8086:a36d device_id='8086:a36d' port_id='00_14.0' devclass='pci' backend_domain='dom0' ", pci);
        Assert.Equal(2, pci.Count(c => c == '\n'));
        Assert.Equal(1, (await qubes.Ok("admin.vm.device.pci.Available", "dom0", "00_1f.6")).Count(c => c == '\n'));
        Assert.Equal("2-1:0781:5583 device_id='0781:5583' port_id='2-1' devclass='usb' backend_domain='sys-usb' vendor='SanDisk Corp.' product='Ultra Fit' name='SanDisk Ultra Fit' interfaces='u080650'\n",
            await qubes.Ok("admin.vm.device.usb.Available", "sys-usb"));
        Assert.Equal("", await qubes.Ok("admin.vm.device.usb.Available", "work"));
        // sys-net's network card is assigned (required) and attached: Attached reports the assignment.
        Assert.Equal("dom0+00_1f.6:8086:15be device_id='8086:15be' port_id='00_1f.6' devclass='pci' backend_domain='dom0' mode='required' frontend_domain='sys-net' _no-strict-reset='True'\n",
            await qubes.Ok("admin.vm.device.pci.Attached", "sys-net"));
    }

    [Fact]
    public async Task Device_assign_lists_changes_mode_and_unassigns()
    {
        var name = await qubes.NewAppVm("da");
        await qubes.Ok("admin.vm.device.pci.Assign", name, "dom0+00_1f.6+8086:15be", "mode='required' _no-strict-reset='yes'");
        Assert.Equal($"dom0+00_1f.6:8086:15be device_id='8086:15be' port_id='00_1f.6' devclass='pci' backend_domain='dom0' mode='required' frontend_domain='{name}' _no-strict-reset='yes'\n",
            await qubes.Ok("admin.vm.device.pci.Assigned", name));
        Assert.Equal(("DeviceAlreadyAssigned", $"pci device dom0:00_1f.6 already assigned to {name}"),
            Pair(await qubes.Error("admin.vm.device.pci.Assign", name, "dom0+00_1f.6", "mode='required'")));
        Assert.Equal("UnrecognizedDevice", (await qubes.Error("admin.vm.device.pci.Assign", name, "dom0+00_1f.6+1111:2222", "mode='required'")).ClassName);
        Assert.Equal("QubesUnrecognizedDeviceAssignmentMode",
            (await qubes.Error("admin.vm.device.pci.Set.assignment", name, "dom0+00_1f.6+8086:15be", "sometimes")).ClassName);
        await qubes.Ok("admin.vm.device.pci.Set.assignment", name, "dom0+00_1f.6+8086:15be", "auto-attach");
        Assert.Contains("mode='auto-attach'", await qubes.Ok("admin.vm.device.pci.Assigned", name, "dom0+00_1f.6"));
        await qubes.Ok("admin.vm.device.pci.Unassign", name, "dom0+00_1f.6+8086:15be");
        Assert.Equal("", await qubes.Ok("admin.vm.device.pci.Assigned", name));
        Assert.Equal("DeviceNotAssigned", (await qubes.Error("admin.vm.device.pci.Unassign", name, "dom0+00_1f.6+8086:15be")).ClassName);
    }

    [Fact]
    public async Task Device_attach_detach_and_the_denied_list()
    {
        var name = await qubes.NewAppVm("dt");
        Assert.Equal(("QubesVMNotRunningError", "VM not running, cannot attach device, do you mean `assign`?"),
            Pair(await qubes.Error("admin.vm.device.usb.Attach", name, "sys-usb+2-1", "")));
        await qubes.Ok("admin.vm.Start", name);
        await qubes.Ok("admin.vm.device.usb.Attach", name, "sys-usb+2-1+0781:5583", "");
        Assert.Equal($"sys-usb+2-1:0781:5583 device_id='0781:5583' port_id='2-1' devclass='usb' backend_domain='sys-usb' mode='manual' frontend_domain='{name}'\n",
            await qubes.Ok("admin.vm.device.usb.Attached", name));
        Assert.Contains($"attachment='{name}'", await qubes.Ok("admin.vm.device.usb.Available", "sys-usb", "2-1"));
        Assert.Equal("DeviceAlreadyAttached", (await qubes.Error("admin.vm.device.usb.Attach", name, "sys-usb+2-1", "")).ClassName);
        await qubes.Ok("admin.vm.device.usb.Detach", name, "sys-usb+2-1");
        Assert.Equal("", await qubes.Ok("admin.vm.device.usb.Attached", name));
        Assert.Equal("DeviceNotAssigned", (await qubes.Error("admin.vm.device.usb.Detach", name, "sys-usb+2-1")).ClassName);
        Assert.Equal("ProtocolError", (await qubes.Error("admin.vm.device.usb.Attach", name, "sys-usb+9-9", "")).ClassName);

        // The stick reports interface u080650 (mass storage): the prefix 'u08' is padded to the pattern 'u08****'.
        Assert.Equal("", await qubes.Ok("admin.vm.device.denied.List", name));
        await qubes.Ok("admin.vm.device.denied.Add", name, "", "b****** u08");
        Assert.Equal("b******\nu08****\n", await qubes.Ok("admin.vm.device.denied.List", name));
        Assert.Equal("PermissionDenied", (await qubes.Error("admin.vm.device.usb.Attach", name, "sys-usb+2-1", "")).ClassName);
        Assert.Equal("QubesValueError", (await qubes.Error("admin.vm.device.denied.Remove", name, "", "u******")).ClassName);
        await qubes.Ok("admin.vm.device.denied.Remove", name, "", "u08****");
        Assert.Equal("b******\n", await qubes.Ok("admin.vm.device.denied.List", name));
        await qubes.Ok("admin.vm.device.usb.Attach", name, "sys-usb+2-1", "");
        await qubes.Ok("admin.vm.device.denied.Remove", name, "", "all");
        Assert.Equal("", await qubes.Ok("admin.vm.device.denied.List", name));
        await qubes.Ok("admin.vm.Kill", name);
    }

    [Fact]
    public async Task Labels_list_get_index_create_remove()
    {
        Assert.StartsWith("red\norange\nyellow\ngreen\ngray\nblue\npurple\nblack\n", await qubes.Ok("admin.label.List", "dom0"));
        Assert.Equal("0x3465a4", await qubes.Ok("admin.label.Get", "dom0", "blue"));
        Assert.Equal("6", await qubes.Ok("admin.label.Index", "dom0", "blue"));
        Assert.Equal(("QubesLabelNotFoundError", "Label does not exist: mauve"), Pair(await qubes.Error("admin.label.Get", "dom0", "mauve")));
        await qubes.Ok("admin.label.Create", "dom0", "mauve", "0xE0B0FF");
        Assert.Equal("0xe0b0ff", await qubes.Ok("admin.label.Get", "dom0", "mauve"));
        Assert.Equal("9", await qubes.Ok("admin.label.Index", "dom0", "mauve"));
        var name = await qubes.NewAppVm("lb", "mauve");
        Assert.Equal("QubesLabelInUseError", (await qubes.Error("admin.label.Remove", "dom0", "mauve")).ClassName);
        await qubes.Ok("admin.vm.property.Set", name, "label", "red");
        await qubes.Ok("admin.label.Remove", "dom0", "mauve");
        Assert.Equal("PermissionDenied", (await qubes.Error("admin.label.Remove", "dom0", "red")).ClassName);
        Assert.Equal("ProtocolError", (await qubes.Error("admin.label.Create", "dom0", "bad", "red")).ClassName);
    }

    [Fact]
    public async Task Notes_get_and_set_utf8_text()
    {
        var name = await qubes.NewAppVm("nt");
        Assert.Equal("", await qubes.Ok("admin.vm.notes.Get", name));
        await qubes.Ok("admin.vm.notes.Set", name, "", "bank only — never browse\nsecond line");
        Assert.Equal("bank only — never browse\nsecond line", await qubes.Ok("admin.vm.notes.Get", name));
        Assert.Equal("ProtocolError", (await qubes.Error("admin.vm.notes.Set", name, "", "bell\a")).ClassName);
        // Notes up to the socket's request limit are taken whole (the 256,000-byte cap cannot be reached through it).
        await qubes.Ok("admin.vm.notes.Set", name, "", new string('x', 65_000));
        Assert.Equal(65_000, (await qubes.Ok("admin.vm.notes.Get", name)).Length);
        await qubes.Ok("admin.vm.notes.Set", name, "", "bank only — never browse\nsecond line");
        Assert.Equal("bank only — never browse\nsecond line", await qubes.Ok("admin.vm.notes.Get", name));
    }

    [Fact]
    public async Task Volumes_are_listed_and_described_read_only()
    {
        Assert.Equal("", await qubes.Ok("admin.vm.volume.List", "dom0"));
        Assert.Equal("root\nprivate\nvolatile\nkernel\n", await qubes.Ok("admin.vm.volume.List", "work"));
        Assert.Equal("pool=varlibqubes\nvid=appvms/work/root\nsize=21474836480\nusage=0\nrw=True\nsource=vm-templates/debian-13/root\npath=\n" +
                     "save_on_stop=False\nsnap_on_start=True\nrevisions_to_keep=0\nephemeral=False\nis_outdated=False\n",
            await qubes.Ok("admin.vm.volume.Info", "work", "root"));
        Assert.Contains("save_on_stop=True\n", await qubes.Ok("admin.vm.volume.Info", "debian-13", "root"));
        Assert.Contains("size=2147483648\n", await qubes.Ok("admin.vm.volume.Info", "work", "private"));
        Assert.Equal(("PermissionDenied", "Argument not in 'work volumes'"), Pair(await qubes.Error("admin.vm.volume.Info", "work", "swap")));
        Assert.Equal("ProtocolError", (await qubes.Error("admin.vm.volume.Resize", "work", "private", "1")).ClassName);
    }

    [Fact]
    public async Task Stats_streams_vm_stats_of_running_qubes()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var frames = new List<AdminResponse.Event>();
        await foreach (var frame in StreamAsync("admin.vm.Stats", "dom0", cts.Token))
        {
            frames.Add(frame);
            if (frames.Count(f => f.Name == "vm-stats" && f.Subject == "sys-usb") == 1 && frames.Any(f => f.Subject == "dom0"))
                break;
        }
        Assert.Equal("connection-established", frames[0].Name);
        var usb = frames.First(f => f.Subject == "sys-usb");
        Assert.Equal("307200", usb.Argument("memory_kb"));
        Assert.Equal("0", usb.Argument("cpu_time"));
        Assert.DoesNotContain(frames, f => f.Subject == "work");
    }

    [Fact]
    public async Task Events_start_with_connection_established_then_follow_the_lifecycle()
    {
        var name = await qubes.NewAppVm("ev");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var frames = new List<AdminResponse.Event>();
        var started = false;
        await foreach (var frame in StreamAsync("admin.Events", name, cts.Token))
        {
            frames.Add(frame);
            if (!started)
            {
                started = true;
                await qubes.Ok("admin.vm.Start", name);
            }
            if (frame.Name == "domain-start")
                break;
        }
        Assert.Equal(("", "connection-established"), (frames[0].Subject, frames[0].Name));
        Assert.Contains(frames, f => f is { Name: "domain-pre-start" } && f.Subject == name);
        Assert.All(frames.Skip(1), f => Assert.Equal(name, f.Subject));
        await qubes.Ok("admin.vm.Kill", name);
    }

    private async IAsyncEnumerable<AdminResponse.Event> StreamAsync(string method, string dest,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var client = qubes.Daemon.Client;
        if (method == "admin.Events")
        {
            await foreach (var frame in client.EventsAsync(dest, ct))
                yield return Assert.IsType<AdminResponse.Event>(frame);
            yield break;
        }
        await foreach (var frame in client.StreamAsync(method, dest, "", ct))
            yield return Assert.IsType<AdminResponse.Event>(frame);
    }

    private static (string, string) Pair(AdminResponse.Error e) => (e.ClassName, e.Message);
}
