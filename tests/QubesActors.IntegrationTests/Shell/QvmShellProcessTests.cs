using QubesActors.AdminApi.Wire;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

/// <summary>One qubesd (default layout) shared by the process tests of the shell.</summary>
public sealed class ShellDaemonFixture : IAsyncLifetime
{
    private readonly string _stateDir = Directory.CreateTempSubdirectory("qa-shell-").FullName;
    private QubesdProcess? _daemon;

    internal QubesdProcess Daemon => _daemon ?? throw new InvalidOperationException("qubesd not started");

    public async Task InitializeAsync() => _daemon = await QubesdProcess.StartAsync(_stateDir);

    public Task DisposeAsync()
    {
        _daemon?.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_stateDir, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// <c>qvm shell</c> as a process against a real qubesd: scripts on a pipe (the output a user sees, the exit status),
/// and a pseudo-terminal for what only a terminal shows (Tab, Ctrl-C, Ctrl-D, events above the prompt, history).
/// Each test that causes events uses its own qube, since the daemon is shared.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class QvmShellProcessTests(ShellDaemonFixture fixture) : IClassFixture<ShellDaemonFixture>, IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("qa-shell-home-").FullName;

    private string Socket => fixture.Daemon.SocketPath;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private async Task<(int Status, string Out, string Err)> RunScriptAsync(string script, string? socket = null, params string[] args)
    {
        using var shell = QvmShellProcess.StartPiped(socket ?? Socket, _home, args);
        shell.Send(script);
        shell.CloseInput();
        var status = await shell.WaitForExitAsync();
        return (status, shell.Out, shell.Err);
    }

    [Fact]
    public async Task A_script_reports_each_error_on_its_line_and_goes_on()
    {
        var (status, output, err) = await RunScriptAsync("help\nbogus\nwatch nosuch\necho 'open\nshell\nwatch\nwatch\n");
        Assert.Equal(0, status);
        Assert.Contains("Commands:", output);
        Assert.Contains("watch: showing events of all qubes", output);
        Assert.Contains("watch: stopped", output);
        var lines = err.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
        [
            "line 2: unknown command 'bogus'; type 'help' for the commands",
            "line 3: error: qubesd refused the event stream: QubesVMNotFoundError: No such domain: 'nosuch'",
            "line 4: syntax error: unterminated single quote",
            "line 5: shell: already in the shell (type 'exit' to leave it)",
        ], lines);
        // A script is not history.
        Assert.False(File.Exists(QvmShellProcess.HistoryPath(_home)));
    }

    [Fact]
    public async Task Qvm_commands_run_as_one_shot_qvm_runs_them()
    {
        var (status, output, err) = await RunScriptAsync("ls\nprefs vault label\nstart nosuch\n");
        Assert.Contains("sys-firewall", output);
        Assert.Contains("black", output);
        Assert.Contains("qvm start: error: no such domain: 'nosuch'", err);
        // The shell passes the command's status through: the same as `qvm start nosuch`.
        Assert.Equal(2, status);
    }

    [Fact]
    public async Task The_exit_status_is_that_of_the_last_command_or_of_exit()
    {
        Assert.Equal(2, (await RunScriptAsync("help\nbogus\n")).Status);
        Assert.Equal(0, (await RunScriptAsync("bogus\nhelp\n")).Status);
        Assert.Equal(9, (await RunScriptAsync("exit 9\nbogus\n")).Status);
    }

    [Fact]
    public async Task Errexit_stops_a_script_at_the_first_failure()
    {
        var (status, output, _) = await RunScriptAsync("bogus\nhelp\n", null, "--errexit");
        Assert.Equal(2, status);
        Assert.DoesNotContain("Commands:", output);
    }

    [Fact]
    public async Task An_unreachable_daemon_is_a_clear_error()
    {
        var (status, _, err) = await RunScriptAsync("watch\n", Path.Combine(_home, "nothing.sock"));
        Assert.Equal(1, status);
        Assert.StartsWith($"line 1: cannot reach qubesd at {Path.Combine(_home, "nothing.sock")}: ", err);
    }

    [Fact]
    public async Task Watch_prints_the_events_a_script_causes()
    {
        using var shell = QvmShellProcess.StartPiped(Socket, _home);
        shell.Send("watch\n");
        await shell.WaitForAsync("watch: showing events of all qubes");
        Assert.IsType<AdminResponse.Ok>(await fixture.Daemon.CallAsync("admin.vm.Start", "untrusted"));
        await shell.WaitForAsync("[event] untrusted: domain-start");
        shell.Send("exit\n");
        shell.CloseInput();
        Assert.Equal(0, await shell.WaitForExitAsync());
    }

    [Fact]
    public async Task In_a_terminal_tab_completes_a_command_and_a_qube_events_appear_above_the_prompt_and_history_is_kept()
    {
        using var shell = QvmShellProcess.StartInTerminal(Socket, _home);
        await shell.WaitForAsync("qvm> ");
        shell.Send("wat\t");
        await shell.WaitForAsync("qvm> watch ");
        shell.Send("pers\t");
        await shell.WaitForAsync("qvm> watch personal ");
        shell.Send("\r");
        await shell.WaitForAsync("watch: showing events of personal");

        shell.Send("hel");
        var typed = await shell.WaitForAsync("qvm> hel");
        Assert.IsType<AdminResponse.Ok>(await fixture.Daemon.CallAsync("admin.vm.Start", "personal"));
        var shown = await shell.WaitForAsync("[event] personal: domain-start", typed);
        // The half-typed line is drawn again below the event, and finishing it runs it.
        await shell.WaitForAsync("qvm> hel", shown);
        shell.Send("p\r");
        await shell.WaitForAsync("Commands:", shown);
        await shell.WaitForAsync("qvm> ", shown);
        shell.Send("\u0004");
        Assert.Equal(0, await shell.WaitForExitAsync());

        var history = QvmShellProcess.HistoryPath(_home);
        Assert.Equal(["watch personal", "help"], File.ReadAllLines(history));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(history));
    }

    [Fact]
    public async Task In_a_terminal_ctrl_c_cancels_the_running_command_and_clears_the_line_at_the_prompt()
    {
        using var shell = QvmShellProcess.StartInTerminal(Socket, _home);
        await shell.WaitForAsync("qvm> ");
        // qvm events streams until cancelled; Ctrl-C ends the stream, not the shell.
        shell.Send("events\r");
        var streaming = await shell.WaitForAsync("\n", await shell.WaitForAsync("qvm> events"));
        await Task.Delay(300);
        shell.Send("\u0003");
        await shell.WaitForAsync("qvm> ", streaming);

        shell.Send("sleep 600\r");
        var submitted = await shell.WaitForAsync("\n", await shell.WaitForAsync("qvm> sleep 600", streaming));
        // The command starts right after the line is submitted; give it a moment so the signal finds it running.
        await Task.Delay(300);
        shell.Send("\u0003");
        var cancelled = await shell.WaitForAsync("cancelled", submitted);
        await shell.WaitForAsync("qvm> ", cancelled);

        shell.Send("start wo");
        var typed = await shell.WaitForAsync("qvm> start wo", cancelled);
        shell.Send("\u0003");
        await shell.WaitForAsync("^C", typed);
        shell.Send("exit\r");
        // exit without a status leaves with the last command's: the cancelled sleep's 130.
        Assert.Equal(130, await shell.WaitForExitAsync());
        Assert.Equal(["events", "sleep 600", "exit"], File.ReadAllLines(QvmShellProcess.HistoryPath(_home)));
    }
}

/// <summary>The completion data against the real daemon: the answers completion needs, and the cache dropped by events.</summary>
public sealed class DaemonCompletionDataTests(ShellDaemonFixture fixture) : IClassFixture<ShellDaemonFixture>
{
    [Fact]
    public void Reads_qubes_properties_and_labels_from_qubesd()
    {
        var data = new QubesActors.Cli.Shell.DaemonCompletionData(() => fixture.Daemon.Client);
        Assert.Contains("sys-net", data.QubeNames());
        Assert.Contains("dom0", data.QubeNames());
        Assert.Contains("netvm", data.PropertyNames("work"));
        Assert.Equal("vm", data.Property("work", "netvm")?.Type);
        Assert.Equal("label", data.Property("work", "label")?.Type);
        Assert.Equal("bool", data.Property("work", "autostart")?.Type);
        Assert.Contains("default_netvm", data.GlobalPropertyNames());
        Assert.Equal("vm", data.GlobalProperty("default_netvm")?.Type);
        Assert.Contains("blue", data.Labels());
        Assert.Contains("AppVM", data.QubeClasses());
        Assert.Empty(data.PropertyNames("nosuch"));
        Assert.Null(data.Property("work", "nosuch"));
    }

    [Fact]
    public async Task The_qube_list_is_cached_until_an_add_or_remove_event()
    {
        // A clock that stands still: only the event can make the answer stale.
        var now = DateTime.UtcNow;
        var data = new QubesActors.Cli.Shell.DaemonCompletionData(() => fixture.Daemon.Client, () => now);
        Assert.DoesNotContain("fresh", data.QubeNames());
        Assert.IsType<AdminResponse.Ok>(await fixture.Daemon.CallAsync("admin.vm.Create.AppVM", "dom0", "debian-13", "name=fresh label=red"));
        Assert.DoesNotContain("fresh", data.QubeNames());
        data.Observe(new AdminResponse.Event("", "domain-add", [new("vm", "fresh")]));
        Assert.Contains("fresh", data.QubeNames());
        // Past its lifetime an answer is asked again without any event.
        now += QubesActors.Cli.Shell.DaemonCompletionData.Ttl;
        Assert.IsType<AdminResponse.Ok>(await fixture.Daemon.CallAsync("admin.vm.Remove", "fresh"));
        Assert.DoesNotContain("fresh", data.QubeNames());
    }
}
