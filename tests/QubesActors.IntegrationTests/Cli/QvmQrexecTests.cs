using System.Text;
using QubesActors.Cli;
using QubesActors.IntegrationTests.AdminApi;
using QubesActors.IntegrationTests.Sandbox;
using Xunit;

namespace QubesActors.IntegrationTests.Cli;

/// <summary>One qubesd on the sandbox backend (root) for the qvm qrexec commands; each test uses qubes of its own.</summary>
public sealed class QvmQrexecFixture : IAsyncLifetime
{
    public SandboxDaemon Sandbox { get; } = new();
    public string Socket => Sandbox.Daemon!.SocketPath;

    public async Task InitializeAsync() => await Sandbox.StartAsync();

    public async Task DisposeAsync() => await Sandbox.DisposeAsync();
}

/// <summary>
/// qvm run / copy-to-vm / move-to-vm / open-in-vm / open-in-dvm against real sandboxes, through qubesd's dom0 qrexec
/// socket (found beside the Admin API socket, as a user's qvm finds it).
/// </summary>
[Collection(SandboxDaemonCollection.Name)]
public sealed class QvmQrexecTests(QvmQrexecFixture fixture) : IClassFixture<QvmQrexecFixture>
{
    private Task<QvmResult> Qvm(params string[] args) => QvmRunner.RunAsync(fixture.Socket, args);

    /// <summary>qvm with <paramref name="stdin"/> as its standard input (what --pass-io forwards).</summary>
    private async Task<QvmResult> QvmWithInput(string stdin, CancellationToken ct, params string[] args)
    {
        var (context, output, error) = QvmRunner.Context(fixture.Socket);
        context.StandardInput = new MemoryStream(Encoding.UTF8.GetBytes(stdin));
        var code = await QvmApp.RunAsync(args, context, ct);
        return new QvmResult(code, output.ToString(), error.ToString());
    }

    private async Task<string> State(string qube) => (await fixture.Sandbox.StatesAsync()).GetValueOrDefault(qube, "absent");

    private async Task<IReadOnlyList<string>> Disposables() =>
        [.. (await fixture.Sandbox.StatesAsync()).Keys.Where(k => k.StartsWith("disp", StringComparison.Ordinal))];

    [Fact]
    public async Task Run_pass_io_autostarts_the_qube_relays_stdin_and_output_and_exits_with_the_commands_code()
    {
        Assert.Equal("Halted", await State("work"));
        var run = await Qvm("run", "--pass-io", "work", "echo hi; exit 3");
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Equal("hi\n", run.Out);
        // The halted qube was started by the call (qvm-run's autostart).
        Assert.Equal("Running", await State("work"));

        var cat = await QvmWithInput("line one\nline two\n", CancellationToken.None, "run", "-p", "work", "cat");
        Assert.True(cat.ExitCode == 0, cat.ToString());
        Assert.Equal("line one\nline two\n", cat.Out);

        var stderr = await Qvm("run", "-p", "work", "echo oops >&2; exit 0");
        Assert.Equal((0, "", "oops\n"), (stderr.ExitCode, stderr.Out, stderr.Err));
    }

    [Fact]
    public async Task The_qvm_program_passes_raw_bytes_both_ways_and_the_exit_code()
    {
        var info = new System.Diagnostics.ProcessStartInfo(QubesActors.IntegrationTests.Shell.QvmShellProcess.DotnetHost)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var arg in new[] { QubesActors.IntegrationTests.Shell.QvmShellProcess.QvmDll, "--socket", fixture.Socket, "run", "-p", "personal", "od -An -tx1 | tr -d ' \n'; exit 7" })
            info.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(info)!;
        // Bytes that are not UTF-8 text, and no newline at the end: they arrive unchanged.
        await process.StandardInput.BaseStream.WriteAsync(new byte[] { 0x00, 0xff, 0x1b, 0x41 });
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 7, $"{process.ExitCode}\n{await output}\n{await error}");
        Assert.Equal("00ff1b41", await output);
    }

    [Fact]
    public async Task Run_without_pass_io_waits_discards_output_and_the_command_ran()
    {
        var run = await Qvm("run", "personal", "echo written > /rw/home/marker; echo discarded");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("", run.Out);
        Assert.Equal("Running 'echo written > /rw/home/marker; echo discarded' on personal\n", run.Err);

        var read = await Qvm("run", "-p", "personal", "cat /rw/home/marker");
        Assert.Equal((0, "written\n"), (read.ExitCode, read.Out));

        var failed = await Qvm("run", "personal", "exit 5");
        Assert.Equal(5, failed.ExitCode);
        Assert.EndsWith("personal: command failed with code: 5\n", failed.Err, StringComparison.Ordinal);
        Assert.Equal(("", 5), ((await Qvm("run", "-q", "personal", "exit 5")).Err, 5));
    }

    [Fact]
    public async Task Run_several_words_go_through_vmexec_and_service_calls_a_service()
    {
        var exec = await Qvm("run", "-p", "personal", "--", "printf", "%s|%s", "a b;c", "-x");
        Assert.True(exec.ExitCode == 0, exec.ToString());
        Assert.Equal("a b;c|-x", exec.Out);

        var service = await Qvm("run", "-p", "--service", "personal", "qubes.GetDate");
        Assert.True(service.ExitCode == 0, service.ToString());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\n$", service.Out);

        var missing = await Qvm("run", "-p", "--service", "personal", "test.Missing");
        Assert.Equal(127, missing.ExitCode);
    }

    [Fact]
    public async Task Run_no_autostart_leaves_a_halted_qube_halted_and_fails_as_qvm_run()
    {
        Assert.Equal("Halted", await State("vault"));
        var run = await Qvm("run", "--no-autostart", "vault", "touch /rw/home/x");
        Assert.Equal((1, "", "Qube 'vault' not started\n"), (run.ExitCode, run.Out, run.Err));
        // qvm-run is silent about it with --pass-io (its verbosity is lowered); the exit code says it.
        var quiet = await Qvm("run", "-n", "-p", "vault", "true");
        Assert.Equal((1, "", ""), (quiet.ExitCode, quiet.Out, quiet.Err));
        Assert.Equal("Halted", await State("vault"));
    }

    [Fact]
    public async Task Run_dispvm_runs_in_a_new_disposable_that_is_killed_when_the_call_ends()
    {
        var before = await Disposables();
        var run = await Qvm("run", "--dispvm", "--pass-io", "hostname");
        Assert.True(run.ExitCode == 0, run.ToString());
        var name = run.Out.Trim();
        Assert.Matches("^disp[0-9]+$", name);
        Assert.DoesNotContain(name, before);
        // Its sandbox is gone: no process left in its cgroup.
        await AdminDaemonFixture.WaitUntilAsync(() => Task.FromResult(fixture.Sandbox.Processes().GetValueOrDefault(name) is null or { Count: 0 }));

        var template = await Qvm("run", "--dispvm=default-dvm", "-p", "--", "cat", "/proc/self/status");
        Assert.True(template.ExitCode == 0, template.ToString());
        Assert.Contains("CapEff:\t0000000000000000", template.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_dispvm_leaves_no_disposable_in_the_collection()
    {
        var before = await Disposables();
        var run = await Qvm("run", "--dispvm", "--pass-io", "hostname");
        Assert.True(run.ExitCode == 0, run.ToString());
        await AdminDaemonFixture.WaitUntilAsync(async () => await State(run.Out.Trim()) == "absent");
        Assert.Equal(before, await Disposables());
    }

    [Fact]
    public async Task Cancelling_a_run_ends_the_call_and_its_disposable()
    {
        var before = await Disposables();
        using var cts = new CancellationTokenSource();
        var (context, output, error) = QvmRunner.Context(fixture.Socket);
        var run = QvmApp.RunAsync(["run", "--dispvm", "-p", "echo started; sleep 1000"], context, cts.Token);
        await AdminDaemonFixture.WaitUntilAsync(() => Task.FromResult(output.ToString().Contains("started", StringComparison.Ordinal) || run.IsCompleted));
        Assert.False(run.IsCompleted, error.ToString());
        var name = Assert.Single((await Disposables()).Except(before));
        Assert.NotEmpty(fixture.Sandbox.Processes()[name]);
        await cts.CancelAsync();
        Assert.Equal(130, await run);
        // qubesd saw the caller go: the service and the disposable are killed, and the disposable removed.
        await AdminDaemonFixture.WaitUntilAsync(async () => await State(name) == "absent");
        Assert.Empty(fixture.Sandbox.Processes().GetValueOrDefault(name) ?? []);
    }

    [Fact]
    public async Task A_refused_call_exits_126_with_request_refused()
    {
        var run = await Qvm("run", "-p", "dom0", "true");
        Assert.Equal(126, run.ExitCode);
        Assert.StartsWith("Request refused", run.Err, StringComparison.Ordinal);
        var quiet = await Qvm("run", "dom0", "true");
        Assert.Equal(126, quiet.ExitCode);
        Assert.Contains("Request refused", quiet.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Copy_to_vm_puts_files_and_directories_into_qubes_incoming_dom0_and_move_removes_them_after()
    {
        var dir = Directory.CreateTempSubdirectory("qa-copy-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "a.txt"), "alpha\n");
            Directory.CreateDirectory(Path.Combine(dir, "tree", "sub"));
            File.WriteAllText(Path.Combine(dir, "tree", "sub", "b.txt"), "beta\n");
            var copy = await Qvm("copy-to-vm", "untrusted", Path.Combine(dir, "a.txt"), Path.Combine(dir, "tree"));
            Assert.True(copy.ExitCode == 0, copy.ToString());
            var read = await Qvm("run", "-p", "untrusted", "cd /rw/home/QubesIncoming/dom0 && cat a.txt tree/sub/b.txt");
            Assert.Equal((0, "alpha\nbeta\n"), (read.ExitCode, read.Out));
            Assert.True(File.Exists(Path.Combine(dir, "a.txt")));

            File.WriteAllText(Path.Combine(dir, "c.txt"), "gamma\n");
            var move = await Qvm("move-to-vm", "untrusted", Path.Combine(dir, "c.txt"));
            Assert.True(move.ExitCode == 0, move.ToString());
            Assert.False(File.Exists(Path.Combine(dir, "c.txt")));
            Assert.Equal("gamma\n", (await Qvm("run", "-p", "untrusted", "cat /rw/home/QubesIncoming/dom0/c.txt")).Out);

            // A file that exists there already is not overwritten: the copy fails and move keeps the local file.
            File.WriteAllText(Path.Combine(dir, "c.txt"), "again\n");
            var again = await Qvm("move-to-vm", "untrusted", Path.Combine(dir, "c.txt"));
            Assert.Equal(1, again.ExitCode);
            Assert.Contains("nothing was removed", again.Err, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(dir, "c.txt")));

            // The sender refuses a symlink: nothing is copied, nothing removed.
            File.CreateSymbolicLink(Path.Combine(dir, "link"), "/etc/passwd");
            var link = await Qvm("move-to-vm", "untrusted", Path.Combine(dir, "link"));
            Assert.Equal(1, link.ExitCode);
            Assert.True(File.Exists(Path.Combine(dir, "link")));
            Assert.NotEqual(0, (await Qvm("run", "-p", "untrusted", "test -e /rw/home/QubesIncoming/dom0/link")).ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Open_in_vm_uses_the_qubes_handler_and_open_in_dvm_opens_in_a_disposable_that_is_gone_afterwards()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("qa-open-").FullName, "report.txt");
        File.WriteAllText(file, "the content\n");
        const string Handler = "#!/bin/sh\necho \"opened $(basename \"$1\") in $(hostname)\"\ncat \"$1\"\n";

        // A qube's own handler: /rw/config/open-handler.
        var install = await QvmWithInput(Handler, CancellationToken.None, "run", "-p", "personal",
            "mkdir -p /rw/config && cat > /rw/config/open-handler && chmod 755 /rw/config/open-handler");
        Assert.True(install.ExitCode == 0, install.ToString());
        var open = await Qvm("open-in-vm", "personal", file);
        Assert.True(open.ExitCode == 0, open.ToString());
        Assert.Equal("opened report.txt in personal\nthe content\n", open.Out);

        // A disposable starts with an empty /rw, so its handler comes from the template's root: xdg-open on PATH.
        var template = await QvmWithInput(Handler, CancellationToken.None, "run", "-p", "debian-13",
            "mkdir -p /usr/local/bin && cat > /usr/local/bin/xdg-open && chmod 755 /usr/local/bin/xdg-open");
        Assert.True(template.ExitCode == 0, template.ToString());
        Assert.Equal(0, (await Qvm("shutdown", "--wait", "debian-13")).ExitCode);

        var before = await Disposables();
        var dvm = await Qvm("open-in-dvm", file);
        Assert.True(dvm.ExitCode == 0, dvm.ToString());
        var match = System.Text.RegularExpressions.Regex.Match(dvm.Out, "^opened report.txt in (disp[0-9]+)\nthe content\n$");
        Assert.True(match.Success, dvm.ToString());
        Assert.DoesNotContain(match.Groups[1].Value, before);
        await AdminDaemonFixture.WaitUntilAsync(async () => await State(match.Groups[1].Value) == "absent");
    }
}
