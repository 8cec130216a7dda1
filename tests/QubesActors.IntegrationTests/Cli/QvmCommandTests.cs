using System.Text.Json;
using QubesActors.Cli.Infrastructure;
using QubesActors.IntegrationTests.AdminApi;
using Xunit;

namespace QubesActors.IntegrationTests.Cli;

/// <summary>
/// qvm against one real qubesd (default layout) shared by the class. Tests that change state use qubes of their own,
/// and none stops the layout's service qubes (that is <see cref="QvmLifecycleTests"/>).
/// </summary>
public sealed class QvmCommandTests(AdminDaemonFixture fixture) : IClassFixture<AdminDaemonFixture>
{
    private Task<QvmResult> Qvm(params string[] args) => QvmRunner.RunAsync(fixture.Daemon.SocketPath, args);

    private async Task<string> NewQube(string prefix, params string[] extra)
    {
        var name = $"{prefix}{Guid.NewGuid():N}"[..Math.Min(20, prefix.Length + 8)];
        var r = await Qvm(["create", "--label", "green", .. extra, name]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return name;
    }

    [Fact]
    public async Task Ls_prints_the_simple_format_aligned_as_column_t_sorted_by_name()
    {
        var r = await Qvm("ls", "vault", "sys-net", "dom0", "sys-firewall");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(
            "NAME          STATE    CLASS    LABEL  TEMPLATE   NETVM\n" +
            "dom0          Running  AdminVM  black  -          -\n" +
            "sys-firewall  Running  AppVM    green  debian-13  sys-net\n" +
            "sys-net       Running  AppVM    red    debian-13  -\n" +
            "vault         Halted   AppVM    black  debian-13  -\n", r.Out);
        Assert.Equal("", r.Err);
    }

    [Fact]
    public async Task Ls_of_an_unknown_qube_is_a_usage_error_with_exit_2()
    {
        var r = await Qvm("ls", "no-such-qube");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("qvm ls: error: no such domain: 'no-such-qube'\n", r.Err);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public async Task Ls_fields_raw_data_globs_and_flags()
    {
        var raw = await Qvm("ls", "--raw-data", "-O", "name,label,netvm,flags,virt_mode", "sys-*");
        Assert.Equal(0, raw.ExitCode);
        Assert.Equal(["sys-firewall|green|sys-net|ar-N---A|pvh", "sys-net|red||Ar-N---A|hvm", "sys-usb|red||Ar-----A|hvm"], raw.OutLines);

        var list = await Qvm("ls", "--raw-list", "--class", "TemplateVM");
        Assert.Equal(["debian-13"], list.OutLines);

        var network = await Qvm("ls", "-n", "sys-firewall");
        Assert.Equal("NAME          STATE    NETVM    IP          IPBACK      GATEWAY", network.OutLines[0]);
        Assert.StartsWith("sys-firewall  Running  sys-net  10.137.0.", network.OutLines[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ls_tree_puts_clients_under_their_netvm()
    {
        var r = await Qvm("ls", "--tree", "-O", "name,netvm", "sys-net", "sys-firewall", "work", "vault");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(
        [
            "NAME            NETVM",
            "sys-net         -",
            "└─sys-firewall  sys-net",
            "  └─work        sys-firewall",
            "vault           -",
        ], r.OutLines);
    }

    [Fact]
    public async Task Ls_json_is_one_document_with_null_for_empty_cells()
    {
        var r = await Qvm("ls", "-o", "json", "dom0", "vault");
        Assert.Equal(0, r.ExitCode);
        using var json = JsonDocument.Parse(r.Out);
        var rows = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(["dom0", "vault"], rows.Select(x => x.GetProperty("name").GetString()));
        Assert.Equal("AdminVM", rows[0].GetProperty("class").GetString());
        Assert.Equal(JsonValueKind.Null, rows[1].GetProperty("netvm").ValueKind);
        Assert.Equal("black", rows[1].GetProperty("label").GetString());
    }

    [Fact]
    public async Task Ls_filters_by_prefs_and_features()
    {
        var r = await Qvm("ls", "--raw-list", "--prefs", "provides_network=True");
        Assert.Equal(["sys-firewall", "sys-net"], r.OutLines);
        var service = await Qvm("ls", "--raw-list", "--servicevm", "y");
        Assert.Equal(["sys-firewall", "sys-net"], service.OutLines);
        var halted = await Qvm("ls", "--raw-list", "--halted", "--label", "black");
        Assert.Contains("vault", halted.OutLines);
        Assert.DoesNotContain("dom0", halted.OutLines);
    }

    [Fact]
    public async Task Unknown_options_and_bad_values_exit_2()
    {
        var format = await Qvm("ls", "--format", "bogus");
        Assert.Equal(2, format.ExitCode);
        Assert.StartsWith("qvm ls: error: ", format.Err, StringComparison.Ordinal);
        var option = await Qvm("ls", "--bogus");
        Assert.Equal(2, option.ExitCode);
        var none = await Qvm();
        Assert.Equal(2, none.ExitCode);
    }

    [Fact]
    public async Task Prefs_lists_flags_gets_sets_and_resets()
    {
        var vm = await NewQube("prefs");
        var list = await Qvm("prefs", vm);
        Assert.Equal(0, list.ExitCode);
        var width = list.OutLines.Max(l => l.IndexOf(' ', StringComparison.Ordinal));
        Assert.Contains("label".PadRight(width) + "  -  green", list.OutLines);
        Assert.Contains("netvm".PadRight(width) + "  D  sys-firewall", list.OutLines);
        Assert.Contains("memory".PadRight(width) + "  D  400", list.OutLines);

        Assert.Equal(0, (await Qvm("prefs", vm, "memory", "800")).ExitCode);
        Assert.Equal("800\n", (await Qvm("prefs", vm, "memory")).Out);
        Assert.Contains(list.OutLines, l => l.StartsWith("memory", StringComparison.Ordinal));
        Assert.Contains((await Qvm("prefs", "--hide-default", vm)).OutLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, "^memory +-  800$"));
        Assert.DoesNotContain("netvm", (await Qvm("prefs", "--hide-default", vm)).Out);

        Assert.Equal(0, (await Qvm("prefs", vm, "netvm", "none")).ExitCode);
        Assert.Equal("\n", (await Qvm("prefs", vm, "netvm")).Out);
        Assert.Equal(0, (await Qvm("prefs", vm, "netvm", "-D")).ExitCode);
        Assert.Equal("sys-firewall\n", (await Qvm("prefs", vm, "netvm")).Out);

        var bad = await Qvm("prefs", vm, "memory", "lots");
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("qvm prefs: error: ", bad.Err, StringComparison.Ordinal);
        var unknown = await Qvm("prefs", vm, "no_such_prop");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Equal("qvm prefs: error: no such property: 'no_such_prop'\n", unknown.Err);
    }

    [Fact]
    public async Task Global_prefs_reads_the_layout_globals()
    {
        Assert.Equal("sys-firewall\n", (await Qvm("global-prefs", "default_netvm")).Out);
        var all = await Qvm("global-prefs", "-o", "json");
        using var json = JsonDocument.Parse(all.Out);
        Assert.Equal("debian-13", json.RootElement.GetProperty("default_template").GetProperty("value").GetString());
        Assert.False(json.RootElement.GetProperty("default_template").GetProperty("default").GetBoolean());
    }

    [Fact]
    public async Task Create_sets_properties_and_a_refused_property_leaves_no_qube()
    {
        var vm = await NewQube("crt", "--property", "vcpus=4", "--prop", "netvm=");
        Assert.Equal("4\n", (await Qvm("prefs", vm, "vcpus")).Out);
        Assert.Equal(0, (await Qvm("check", vm)).ExitCode);

        var bad = await Qvm("create", "-l", "red", "--property", "vcpus=many", "crt-bad");
        Assert.Equal(1, bad.ExitCode);
        var check = await Qvm("check", "crt-bad");
        Assert.Equal(1, check.ExitCode);
        Assert.Equal("crt-bad: does not exist\n", check.Out);

        var noLabel = await Qvm("create", "crt-nolabel");
        Assert.Equal(2, noLabel.ExitCode);
        var taken = await Qvm("create", "-l", "red", "work");
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("work", taken.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Remove_reports_what_uses_a_qube_and_removes_a_free_one()
    {
        var inUse = await Qvm("remove", "-f", "debian-13");
        Assert.Equal(1, inUse.ExitCode);
        Assert.Contains("VM debian-13 cannot be removed. It is in use as:\n", inUse.Err, StringComparison.Ordinal);
        Assert.Contains(" - global property default_template\n", inUse.Err, StringComparison.Ordinal);

        var vm = await NewQube("rm");
        var notAsked = await Qvm("remove", vm);
        Assert.Equal(1, notAsked.ExitCode);
        Assert.Equal(0, (await Qvm("remove", "-f", vm)).ExitCode);
        Assert.Equal(1, (await Qvm("check", "-q", vm)).ExitCode);
    }

    [Fact]
    public async Task Check_answers_by_exit_code()
    {
        Assert.Equal(0, (await Qvm("check", "--running", "sys-net")).ExitCode);
        var halted = await Qvm("check", "--running", "vault");
        Assert.Equal(1, halted.ExitCode);
        Assert.Equal("vault: is not running\n", halted.Out);
        Assert.Equal(0, (await Qvm("check", "--template", "debian-13")).ExitCode);
        Assert.Equal(1, (await Qvm("check", "--networked", "vault")).ExitCode);
        Assert.Equal(0, (await Qvm("check", "--networked", "work")).ExitCode);
    }

    [Fact]
    public async Task Tags_add_list_and_delete()
    {
        var vm = await NewQube("tags");
        Assert.Equal(0, (await Qvm("tags", vm, "add", "alpha", "beta")).ExitCode);
        var list = await Qvm("tags", vm);
        Assert.Contains("alpha", list.OutLines);
        Assert.Contains("beta", list.OutLines);
        Assert.Contains("created-by-dom0", list.OutLines);
        Assert.Equal(0, (await Qvm("tags", vm, "list", "alpha")).ExitCode);
        Assert.Equal(0, (await Qvm("tags", vm, "del", "alpha", "never-set")).ExitCode);
        var absent = await Qvm("tags", vm, "list", "alpha");
        Assert.Equal(1, absent.ExitCode);
        Assert.Equal("", absent.Out);
    }

    [Fact]
    public async Task Features_and_services()
    {
        var vm = await NewQube("feat");
        Assert.Equal(0, (await Qvm("features", vm, "gui", "1")).ExitCode);
        Assert.Equal("1\n", (await Qvm("features", vm, "gui")).Out);
        Assert.Equal(0, (await Qvm("service", vm, "clocksync", "on")).ExitCode);
        Assert.Equal(0, (await Qvm("service", vm, "cups", "--disable")).ExitCode);
        Assert.Equal(["clocksync  on", "cups       off"], (await Qvm("service", vm)).OutLines);
        Assert.Contains("service.clocksync  1", (await Qvm("features", vm)).OutLines);
        Assert.Equal(0, (await Qvm("service", vm, "clocksync", "--default")).ExitCode);
        Assert.Equal(1, (await Qvm("service", vm, "clocksync")).ExitCode);
        Assert.Equal(0, (await Qvm("features", vm, "gui", "--unset")).ExitCode);
        var missing = await Qvm("features", vm, "gui");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("qvm features: error: ", missing.Err, StringComparison.Ordinal);
        var sysNet = await Qvm("service", "sys-net");
        Assert.Contains(sysNet.OutLines, l => l.StartsWith("clocksync ", StringComparison.Ordinal) && l.EndsWith(" on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Firewall_add_list_raw_delete_and_reset()
    {
        var vm = await NewQube("fw");
        Assert.Equal(0, (await Qvm("firewall", vm, "add", "accept", "example.com", "tcp", "443")).ExitCode);
        Assert.Equal(0, (await Qvm("firewall", vm, "add", "--before", "0", "action=drop", "proto=icmp", "comment=No", "ICMP")).ExitCode);
        var list = await Qvm("firewall", vm);
        Assert.Equal(
        [
            "NO  ACTION  HOST         PROTOCOL  PORT(S)  SPECIAL TARGET  ICMP TYPE  EXPIRE  COMMENT",
            "0   drop    -            icmp      -        -               -          -       No ICMP",
            "1   accept  -            -         -        -               -          -       -",
            "2   accept  example.com  tcp       443      -               -          -       -",
        ], list.OutLines);
        Assert.Equal(["action=drop proto=icmp comment=No ICMP", "action=accept", "action=accept proto=tcp dsthost=example.com dstports=443-443"],
            (await Qvm("firewall", vm, "--raw")).OutLines);
        Assert.Equal(0, (await Qvm("firewall", vm, "del", "--rule-no", "1")).ExitCode);
        Assert.Equal(0, (await Qvm("firewall", vm, "del", "accept", "example.com", "tcp", "443")).ExitCode);
        Assert.Equal(["action=drop proto=icmp comment=No ICMP"], (await Qvm("firewall", vm, "--raw")).OutLines);

        var bad = await Qvm("firewall", vm, "add", "action=accept", "dstports=80");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("dstports", bad.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await Qvm("firewall", vm, "reset")).ExitCode);
        Assert.Equal(["action=accept"], (await Qvm("firewall", vm, "--raw")).OutLines);
    }

    [Fact]
    public async Task Device_usb_list_attach_and_detach()
    {
        var vm = await NewQube("usb", "--prop", "netvm=");
        Assert.Equal(0, (await Qvm("start", vm)).ExitCode);
        var before = await Qvm("usb", "list");
        Assert.Equal(0, before.ExitCode);
        var line = Assert.Single(before.OutLines, l => l.StartsWith("sys-usb:2-1 ", StringComparison.Ordinal));
        Assert.DoesNotContain(vm, line, StringComparison.Ordinal);

        var attach = await Qvm("device", "usb", "attach", vm, "sys-usb:2-1");
        Assert.True(attach.ExitCode == 0, attach.ToString());
        Assert.EndsWith("  " + vm, Assert.Single((await Qvm("usb", "ls", vm)).OutLines), StringComparison.Ordinal);
        var again = await Qvm("usb", "a", vm, "sys-usb:2-1");
        Assert.Equal(1, again.ExitCode);
        Assert.Equal(0, (await Qvm("usb", "detach", vm, "sys-usb:2-1")).ExitCode);
        Assert.Empty((await Qvm("usb", "list", vm)).OutLines);

        var pci = await Qvm("pci", "list", "-s", "sys-net");
        Assert.Contains(pci.OutLines, l => l.StartsWith("dom0:00_1f.6 ", StringComparison.Ordinal) && l.Contains("*sys-net (required", StringComparison.Ordinal));
        var json = await Qvm("usb", "list", "-o", "json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Contains(doc.RootElement.EnumerateArray(), d => d.GetProperty("device").GetString() == "sys-usb:2-1");
        Assert.Equal(0, (await Qvm("kill", vm)).ExitCode);
    }

    [Fact]
    public async Task Call_prints_ok_content_raw_and_exceptions_as_class_and_message()
    {
        var ok = await Qvm("call", "admin.vm.property.Get", "work", "label");
        Assert.Equal(0, ok.ExitCode);
        Assert.Equal("default=False type=label blue", ok.Out);
        var error = await Qvm("call", "admin.vm.property.Get", "work", "nope");
        Assert.Equal(1, error.ExitCode);
        Assert.Equal("QubesNoSuchPropertyError: Invalid property 'nope' of work\n", error.Err);
        var method = await Qvm("call", "admin.no.Such", "dom0");
        Assert.Equal("ProtocolError: no such method\n", method.Err);
        var payload = await Qvm("call", "admin.vm.feature.Set", "vault", "x-call", "--payload", "v1");
        Assert.Equal(0, payload.ExitCode);
        Assert.Equal("v1", (await Qvm("call", "admin.vm.feature.Get", "vault", "x-call")).Out);
    }

    [Fact]
    public async Task Arguments_starting_with_at_are_sent_as_given_not_read_as_response_files()
    {
        var at = await Qvm("call", "admin.vm.property.Get", "work", "@dispvm");
        Assert.Equal("QubesNoSuchPropertyError: Invalid property '@dispvm' of work\n", at.Err);
    }

    [Fact]
    public async Task Events_streams_lines_until_cancelled()
    {
        var vm = await NewQube("ev");
        var (context, output, _) = QvmRunner.Context(fixture.Daemon.SocketPath);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = QubesActors.Cli.QvmApp.RunAsync(["events", vm], context, cts.Token);
        // The subscription is in place once a change shows up; keep changing until one does.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!output.ToString().Contains("domain-tag-add:marker", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Qvm("tags", vm, "del", "marker");
            await Qvm("tags", vm, "add", "marker");
            await Task.Delay(100);
        }
        await cts.CancelAsync();
        Assert.Equal(0, await run);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains($"{vm} domain-tag-add:marker tag=marker", lines);
        Assert.All(lines, l => Assert.StartsWith(vm + " ", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Run_dispvm_creates_and_starts_a_disposable_and_a_command_needs_the_dom0_qrexec_socket()
    {
        var run = await Qvm("run", "--dispvm");
        Assert.True(run.ExitCode == 0, run.ToString());
        var name = run.Out.Trim();
        Assert.Matches("^disp[0-9]+$", name);
        Assert.Equal([$"{name}|Running|DispVM|default-dvm|True"], (await Qvm("ls", "--raw-data", "-O", "name,state,class,template,auto_cleanup", name)).OutLines);
        Assert.Equal(0, (await Qvm("kill", name)).ExitCode);
        await AdminDaemonFixture.WaitUntilAsync(async () => (await Qvm("check", "-q", name)).ExitCode == 1);

        // The simulated backend has no qrexec: refused before any qube is created or started.
        var before = (await Qvm("ls", "--raw-list")).OutLines;
        var command = await Qvm("run", "--dispvm=default-dvm", "xterm");
        Assert.Equal(1, command.ExitCode);
        Assert.Contains("qrexec socket", command.Err, StringComparison.Ordinal);
        Assert.Contains("--backend sandbox", command.Err, StringComparison.Ordinal);
        Assert.Equal(before, (await Qvm("ls", "--raw-list")).OutLines);

        var plain = await Qvm("run", "work", "xterm");
        Assert.Equal(1, plain.ExitCode);
        Assert.Equal("Halted", (await Qvm("ls", "--raw-data", "-O", "state", "work")).Out.Trim());
    }

    [Fact]
    public async Task Bulk_tools_report_per_qube_errors()
    {
        var vm = await NewQube("bulk");
        Assert.Equal(0, (await Qvm("kill", vm)).ExitCode);
        var pause = await Qvm("pause", vm);
        Assert.Equal(1, pause.ExitCode);
        Assert.StartsWith($"Error: Failed to pause: {vm}: ", pause.Err, StringComparison.Ordinal);
        var exclude = await Qvm("shutdown", "--exclude", "work", vm);
        Assert.Equal(2, exclude.ExitCode);
        Assert.Equal("qvm shutdown: error: --exclude can only be used with --all\n", exclude.Err);
        var unknown = await Qvm("start", "no-such-qube");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Equal("qvm start: error: no such domain: 'no-such-qube'\n", unknown.Err);
    }

    [Fact]
    public async Task An_unreachable_daemon_names_the_socket_and_the_variable()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"qvm-none-{Guid.NewGuid():N}.sock");
        var r = await QvmRunner.RunAsync(socket, "ls");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"qvm ls: error: cannot connect to qubesd at '{socket}'", r.Err, StringComparison.Ordinal);
        Assert.Contains("QUBESD_SOCKET", r.Err, StringComparison.Ordinal);
        // --socket overrides the context's socket.
        var viaOption = await QvmRunner.RunAsync(socket, "ls", "--raw-list", "--socket", fixture.Daemon.SocketPath, "dom0");
        Assert.Equal(["dom0"], viaOption.OutLines);
    }

    [Fact]
    public void Control_characters_never_reach_the_terminal_raw()
    {
        Assert.Equal("a\\x1b[31mb\\x07c\\x9b", Terminal.Sanitize("a\u001b[31mb\u0007c\u009b"));
        Assert.Equal("tab\tkept", Terminal.Sanitize("tab\tkept"));
        var (context, output, _) = QvmRunner.Context("unused");
        context.Out.WriteCells(new Cell("[red]x[/] \u001b]0;title\u0007", LabelStyles.For("red")));
        Assert.Equal("[red]x[/] \\x1b]0;title\\x07\n", output.ToString());
    }
}
