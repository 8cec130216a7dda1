using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using QubesActors.Sandbox.Qrexec;
using Xunit;

namespace QubesActors.Sandbox.Tests.Qrexec;

/// <summary>qrexec between real sandboxes (bubblewrap, busybox template), as root.</summary>
public sealed class QrexecCallTests : IAsyncLifetime
{
    private QrexecFixture _q = null!;

    public Task InitializeAsync()
    {
        _q = new QrexecFixture(new FakeRouter(call =>
            call.Service == "test.Forbidden" ? new QrexecRoute.Denied("test.Forbidden is not for you")
            : call.Target == "@default" ? new QrexecRoute.Denied("") : null));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _q.DisposeAsync();

    [Fact]
    public async Task A_call_from_inside_a_qube_reaches_the_target_service_with_its_input_and_returns_its_output_stderr_and_exit_code()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"echo hi | qrexec-client-vm {b} test.Echo+some.arg; echo \"rc=$?\"");
        Assert.Equal($"got hi from {a} for test.Echo+some.arg arg=some.arg\nrc=3\n", r.Out);
        Assert.Equal("to stderr\n", r.Err);
        var call = Assert.Single(_q.Router.Calls);
        Assert.Equal(new QrexecCall(a, b, "test.Echo", "some.arg"), call);
        Assert.Equal(3, Assert.Single(_q.Router.Ended).Code);
    }

    [Fact]
    public async Task A_denied_call_ends_with_126_and_request_refused_inside_the_caller_and_runs_nothing()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"echo hi | qrexec-client-vm {b} test.Forbidden; echo \"rc=$?\"; qrexec-client-vm @default test.Echo < /dev/null; echo \"rc=$?\"");
        Assert.Equal("rc=126\nrc=126\n", r.Out);
        Assert.Equal("Request refused: test.Forbidden is not for you\nRequest refused\n", r.Err);
        Assert.Empty(_q.Router.Ended);
    }

    [Fact]
    public async Task The_caller_is_the_qube_whose_channel_the_call_came_on_whatever_the_request_names()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        // A names B as the target and claims nothing else: there is no field to claim an identity with. Even a
        // request forged with another qube's name in the target, or sent from the host onto A's channel, is A's.
        var r = await _q.Sh(a, $"echo x | QREXEC_REMOTE_DOMAIN={b} qrexec-client-vm {b} test.Echo");
        Assert.Contains($"from {a} ", r.Out);
        await using (var channel = await Connect(Path.Combine(_q.T.Run(a), SandboxManager.ChannelFile)))
        {
            await channel.WriteAsync(QrexecProtocol.EncodeRequest(b, "test.Echo"));
            await channel.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.Stdin, "y\n"u8));
            await channel.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.StdinEof, []));
            var (output, code) = await ReadUntilExit(channel);
            Assert.Equal(3, code);
            Assert.Contains($"got y from {a} ", output);
        }
        Assert.All(_q.Router.Calls, c => Assert.Equal(a, c.Caller));
        Assert.Equal(2, _q.Router.Calls.Count);
    }

    [Fact]
    public async Task A_service_runs_in_the_targets_namespaces_and_cgroup_without_capabilities_and_with_no_new_privs()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"qrexec-client-vm {b} test.Facts < /dev/null");
        var facts = r.Out.Split('\n');
        Assert.Contains("CapEff:\t0000000000000000", facts);
        Assert.Contains("CapPrm:\t0000000000000000", facts);
        Assert.Contains("CapBnd:\t0000000000000000", facts);
        Assert.Contains("NoNewPrivs:\t1", facts);
        Assert.Contains(b, facts); // B's hostname: its uts namespace
        var pid = int.Parse(facts.Single(f => f.StartsWith("pid ", StringComparison.Ordinal))[4..]);
        Assert.True(pid < 100, $"the service's pid {pid} is not from the target's pid namespace");
        Assert.Contains("cwd /rw/home", facts);
        Assert.Contains(facts, f => f.EndsWith($"/{b}", StringComparison.Ordinal)); // B's cgroup
    }

    [Fact]
    public async Task A_missing_service_is_an_error_the_caller_sees()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"qrexec-client-vm {b} test.Nothing+arg < /dev/null; echo \"rc=$?\"");
        Assert.Equal("rc=127\n", r.Out);
        Assert.Contains("service test.Nothing+arg not found", r.Err);
        Assert.Equal(127, Assert.Single(_q.Router.Ended).Code);
    }

    [Fact]
    public async Task A_service_named_with_its_argument_is_preferred_over_the_plain_one()
    {
        _q.InstallService("test.Pick+special", "echo special");
        _q.InstallService("test.Pick", "echo plain $QREXEC_SERVICE_ARGUMENT");
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"qrexec-client-vm {b} test.Pick+special < /dev/null; qrexec-client-vm {b} test.Pick+other < /dev/null");
        Assert.Equal("special\nplain other\n", r.Out);
    }

    [Fact]
    public async Task Large_input_and_output_stream_through_without_deadlock_and_stdin_eof_reaches_the_service()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"head -c 3000000 /dev/zero | qrexec-client-vm {b} test.Cat | wc -c");
        Assert.Equal("3000000", r.Out.Trim());
        // A closed stdin is an empty one.
        r = await _q.Sh(a, $"qrexec-client-vm {b} test.Cat <&-; echo \"rc=$?\"");
        Assert.Equal("rc=0\n", r.Out);
    }

    [Fact]
    public async Task qubes_VMShell_runs_the_input_as_a_shell_script_and_qvm_run_vm_uses_it()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"printf 'echo $((6*7))\\nhostname\\nexit 4\\n' | qrexec-client-vm {b} qubes.VMShell; echo \"rc=$?\"; qvm-run-vm {b} 'echo \"in $(hostname)\"'");
        Assert.Equal($"42\n{b}\nrc=4\nin {b}\n", r.Out);
    }

    [Fact]
    public async Task qubes_VMShell_is_one_shell_reading_its_script_and_with_bash_in_the_template_the_input_after_the_script_reaches_its_commands()
    {
        // busybox template: `#!/bin/sh -s`, the shell started by the kernel is the one that reads the script.
        Assert.StartsWith("#!/bin/sh -s\n", File.ReadAllText(Path.Combine(_q.T.TemplateRoot, "etc", "qubes-rpc", "qubes.VMShell")), StringComparison.Ordinal);
        var ash = await _q.Start("ash");
        var r = await _q.FromDom0(ash, "qubes.VMShell", stdin: "echo \"$0 $1\"; echo $$\n");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal("/bin/sh /etc/qubes-rpc/qubes.VMShell", r.Out.Split('\n')[0]);

        // The host's bash (and the libraries it needs) in the template, as a Debian template has it.
        foreach (var file in new[] { "/usr/bin/bash" }.Concat(LibrariesOf("/usr/bin/bash")))
        {
            var inTemplate = Path.Combine(_q.T.TemplateRoot, file.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(inTemplate)!);
            File.Copy(file, inTemplate, overwrite: true);
        }
        QubesActors.Sandbox.Guest.GuestBundle.InstallServices(_q.T.TemplateRoot);
        Assert.StartsWith("#!/usr/bin/bash -s\n", File.ReadAllText(Path.Combine(_q.T.TemplateRoot, "etc", "qubes-rpc", "qubes.VMShell")), StringComparison.Ordinal);
        var bash = await _q.Start("bash");
        r = await _q.FromDom0(bash, "qubes.VMShell", stdin: "read -r x; echo \"got $x\"; cat\nline two\nline three\n");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal("got line two\nline three\n", r.Out);
    }

    /// <summary>The shared libraries a host binary loads, from ldd.</summary>
    private static IEnumerable<string> LibrariesOf(string binary)
    {
        using var ldd = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ldd", binary) { RedirectStandardOutput = true })!;
        var output = ldd.StandardOutput.ReadToEnd();
        ldd.WaitForExit();
        return Regex.Matches(output, @"(/\S+\.so[.\d]*)").Select(m => m.Groups[1].Value).Distinct().ToList();
    }

    [Fact]
    public async Task qubes_VMExec_runs_the_command_encoded_in_its_argument_without_a_shell()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        // echo "a b" "/x-y" '$HOME': '-20' is a space, '-2F' a slash, '--' a dash, '-24' a dollar.
        var r = await _q.Sh(a, $"qrexec-client-vm {b} qubes.VMExec+echo+a-20b+-2Fx--y+-24HOME < /dev/null; echo \"rc=$?\"; qrexec-client-vm {b} qubes.VMExec+echo+bad-zz < /dev/null; echo \"rc=$?\"");
        Assert.Equal("a b /x-y $HOME\nrc=0\nrc=127\n", r.Out);
        Assert.Contains("invalid argument encoding", r.Err);
    }

    [Fact]
    public async Task qubes_GetDate_prints_the_utc_time_in_iso_8601()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"qrexec-client-vm {b} qubes.GetDate < /dev/null");
        Assert.Matches(new Regex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\n$"), r.Out);
    }

    [Fact]
    public async Task qvm_copy_to_vm_puts_files_and_directories_into_the_targets_QubesIncoming_of_the_caller()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"""
            cd /rw/home && echo report > report.txt && mkdir -p dir/sub && echo deep > dir/sub/deep.txt && chmod 640 report.txt
            qvm-copy-to-vm {b} report.txt /rw/home/dir; echo "rc=$?"
            """);
        Assert.Equal("rc=0\n", r.Out);
        var incoming = Path.Combine(_q.Home(b), "QubesIncoming", a);
        Assert.Equal("report\n", File.ReadAllText(Path.Combine(incoming, "report.txt")));
        Assert.Equal("deep\n", File.ReadAllText(Path.Combine(incoming, "dir", "sub", "deep.txt")));
        Assert.Equal((UnixFileMode)Convert.ToInt32("640", 8), File.GetUnixFileMode(Path.Combine(incoming, "report.txt")));
        // Copying the same file again does not overwrite it.
        r = await _q.Sh(a, $"qvm-copy-to-vm {b} /rw/home/report.txt; echo \"rc=$?\"");
        Assert.Equal("rc=1\n", r.Out);
        Assert.Contains("already exists", r.Err);
    }

    [Fact]
    public async Task qubes_Filecopy_refuses_hostile_names_symlinks_and_truncated_streams()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var home = _q.Home(b);
        var r = await _q.Sh(a, $"""
            printf 'f 644 2 9\n../escapehi' | qrexec-client-vm {b} qubes.Filecopy; echo "dotdot=$?"
            printf 'f 644 2 10\n/etc/evilhi' | qrexec-client-vm {b} qubes.Filecopy; echo "absolute=$?"
            printf 'd 755 0 1\nsf 644 2 6\ns/./xhi' | qrexec-client-vm {b} qubes.Filecopy; echo "dot=$?"
            printf 'f 644 2 3\na\001bhi' | qrexec-client-vm {b} qubes.Filecopy; echo "control=$?"
            printf 'f 644 5 5\nshorthi' | qrexec-client-vm {b} qubes.Filecopy; echo "short=$?"
            printf 'l 777 0 4\nlink' | qrexec-client-vm {b} qubes.Filecopy; echo "symlink-entry=$?"
            ln -s /etc/passwd /rw/home/link; qvm-copy-to-vm {b} /rw/home/link; echo "symlink=$?"
            """);
        Assert.Equal("dotdot=1\nabsolute=1\ndot=1\ncontrol=1\nshort=1\nsymlink-entry=1\nsymlink=1\n", r.Out);
        Assert.Contains("refused an unsafe name", r.Err);
        Assert.Contains("symlinks and devices are not copied", r.Err);
        Assert.False(File.Exists(Path.Combine(home, "QubesIncoming", "escape")));
        Assert.False(File.Exists(Path.Combine(home, "escape")));
        Assert.False(File.Exists(Path.Combine(_q.T.Storage, "qubes", b, "merged", "etc", "evil")));
        Assert.False(File.Exists(Path.Combine(home, "QubesIncoming", a, "link")));
        Assert.False(File.Exists(Path.Combine(home, "QubesIncoming", a, "x")));
    }

    [Fact]
    public async Task qubes_Filecopy_does_not_follow_a_symlink_the_target_has_in_its_incoming_directory()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        // B's own incoming directory holds a symlink (however it got there): a copy must not write through it.
        await _q.Sh(b, $"mkdir -p /rw/home/QubesIncoming/{a} && ln -s /etc /rw/home/QubesIncoming/{a}/etc");
        var r = await _q.Sh(a, $"printf 'f 644 2 8\netc/evilhi' | qrexec-client-vm {b} qubes.Filecopy; echo \"rc=$?\"");
        Assert.Equal("rc=1\n", r.Out);
        Assert.False(File.Exists(Path.Combine(_q.T.Storage, "qubes", b, "merged", "etc", "evil")));
    }

    [Fact]
    public async Task qvm_open_in_vm_sends_a_file_the_target_opens_with_its_handler_or_keeps()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b", name =>
        {
            var config = Path.Combine(_q.T.Storage, "qubes", name, "private", "config");
            Directory.CreateDirectory(config);
            File.WriteAllText(Path.Combine(config, "open-handler"), "#!/bin/sh\necho \"opened $1: $(cat \"$1\")\"\n");
            File.SetUnixFileMode(Path.Combine(config, "open-handler"), (UnixFileMode)Convert.ToInt32("755", 8));
        });
        var c = await _q.Start("c");
        var r = await _q.Sh(a, $"echo 'the note' > /rw/home/note.txt; qvm-open-in-vm {b} /rw/home/note.txt; echo \"rc=$?\"; qvm-open-in-vm {c} /rw/home/note.txt");
        var lines = r.Out.Split('\n');
        Assert.Matches(new Regex(@"^opened /tmp/qubes-open\.[^/]+/note\.txt: the note$"), lines[0]);
        Assert.Equal("rc=0", lines[1]);
        // Without a handler: kept, its path printed.
        Assert.Matches(new Regex(@"^/tmp/qubes-open\.[^/]+/note\.txt$"), lines[2]);
        Assert.Equal("the note\n", (await _q.Sh(c, $"cat {lines[2]}")).Out);
    }

    [Fact]
    public async Task Many_concurrent_calls_from_one_qube_all_complete()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"""
            for i in $(seq 1 30); do (echo "call$i" | qrexec-client-vm {b} test.Echo > /tmp/out.$i 2>/dev/null; echo "rc=$?" >> /tmp/out.$i) & done
            wait
            cat /tmp/out.* | sort
            """);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(30, lines.Count(l => l == "rc=3"));
        for (var i = 1; i <= 30; i++)
            Assert.Contains($"got call{i} from {a} for test.Echo arg=", lines);
        Assert.Equal(30, _q.Router.Ended.Count);
    }

    [Fact]
    public async Task Malformed_input_on_a_channel_closes_that_connection_with_an_error_and_the_channel_still_works()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var path = Path.Combine(_q.T.Run(a), SandboxManager.ChannelFile);
        foreach (var garbage in new[]
                 {
                     new byte[] { 99, 0, 0, 0, 0 }, // unknown type
                     [1, 0xff, 0xff, 0xff, 0xff], // a request of 4 GiB
                     [4, 0, 0, 0, 1, 65], // stdout from a client
                     [2, 0, 0, 0, 1, 65], // stdin before the request
                     [.. QrexecProtocol.EncodeRequest("a/b", "test.Echo")], // invalid target
                     [.. QrexecProtocol.EncodeRequest(b, "../../bin/sh")], // invalid service
                 })
        {
            await using var channel = await Connect(path);
            await channel.WriteAsync(garbage);
            var frame = await QrexecProtocol.ReadAsync(channel, fromClient: false, CancellationToken.None);
            Assert.Equal(QrexecFrameType.Refused, frame!.Value.Type);
            Assert.StartsWith("protocol error", Encoding.UTF8.GetString(frame.Value.Payload.Span));
            Assert.Null(await QrexecProtocol.ReadAsync(channel, fromClient: false, CancellationToken.None)); // closed
        }
        // A request cut off mid-call (a frame after stdin EOF) ends the call.
        await using (var channel = await Connect(path))
        {
            await channel.WriteAsync(QrexecProtocol.EncodeRequest(b, "test.Cat"));
            await channel.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.StdinEof, []));
            await channel.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.Stdin, "late"u8));
            await ReadUntilClosed(channel);
        }
        var r = await _q.Sh(a, $"echo ok | qrexec-client-vm {b} test.Cat");
        Assert.Equal("ok\n", r.Out);
    }

    [Fact]
    public async Task A_caller_that_goes_away_mid_call_ends_the_service_and_the_call()
    {
        _q.InstallService("test.Forever", "echo started; exec sleep 1000");
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        await using (var channel = await Connect(Path.Combine(_q.T.Run(a), SandboxManager.ChannelFile)))
        {
            await channel.WriteAsync(QrexecProtocol.EncodeRequest(b, "test.Forever"));
            var started = await QrexecProtocol.ReadAsync(channel, fromClient: false, CancellationToken.None);
            Assert.Equal("started\n", Encoding.UTF8.GetString(started!.Value.Payload.Span));
        }
        // Ended is told the call was cut off; the service's sleep is gone from B.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (_q.Router.Ended.IsEmpty)
            await Task.Delay(20, timeout.Token);
        Assert.Equal(-1, Assert.Single(_q.Router.Ended).Code);
        Assert.Equal("", (await _q.Sh(b, "ps | grep 'sleep 1000' | grep -v grep")).Out);
    }

    internal static async Task<NetworkStream> Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return new NetworkStream(socket, ownsSocket: true);
    }

    internal static async Task<(string Output, int Code)> ReadUntilExit(Stream channel)
    {
        var output = new StringBuilder();
        while (await QrexecProtocol.ReadAsync(channel, fromClient: false, CancellationToken.None) is { } frame)
        {
            if (frame.Type == QrexecFrameType.Exit)
                return (output.ToString(), QrexecProtocol.DecodeExit(frame.Payload.Span));
            if (frame.Type == QrexecFrameType.Stdout)
                output.Append(Encoding.UTF8.GetString(frame.Payload.Span));
        }
        throw new IOException("closed without an exit code");
    }

    private static async Task ReadUntilClosed(Stream channel)
    {
        while (await QrexecProtocol.ReadAsync(channel, fromClient: false, CancellationToken.None) is not null)
        {
        }
    }

    [Fact]
    public async Task A_target_handed_out_paused_gets_its_service_launched_first_and_thawed_by_the_hook_and_a_failing_hook_refuses_the_call()
    {
        QrexecFixture? fixture = null;
        var pausedAtLaunch = new List<bool>();
        var ended = new System.Collections.Concurrent.ConcurrentQueue<int>();
        await using var q = fixture = new QrexecFixture(new FakeRouter(call => call.Service switch
        {
            // What the router does with a preloaded disposable: hand it out paused, unpause it once the service is launched.
            "test.Echo" => new QrexecRoute.Allowed(call.Target, _ => Task.CompletedTask)
            {
                Launched = _ =>
                {
                    pausedAtLaunch.Add(fixture!.T.Manager.IsPaused(call.Target));
                    fixture.T.Manager.Unpause(call.Target);
                    return Task.CompletedTask;
                },
            },
            "test.Cat" => new QrexecRoute.Allowed(call.Target, code =>
            {
                ended.Enqueue(code);
                return Task.CompletedTask;
            })
            {
                Launched = _ => throw new InvalidOperationException("preloaded disposable cannot be unpaused: a test"),
            },
            _ => null,
        }));
        var target = await q.Start("handout");
        await q.Service.Runner.PrepareSlotAsync(target, CancellationToken.None);
        q.T.Manager.Pause(target);
        var served = await q.FromDom0(target, "test.Echo", stdin: "hello\n");
        Assert.Equal(3, served.Code);
        Assert.Equal("got hello from dom0 for test.Echo arg=\n", served.Out);
        Assert.Equal([true], pausedAtLaunch);

        q.T.Manager.Pause(target);
        var refused = await q.FromDom0(target, "test.Cat", stdin: "never read\n");
        Assert.Equal(QrexecService.RefusedExitCode, refused.Code);
        Assert.Equal($"Request refused: {target}: preloaded disposable cannot be unpaused: a test\n", refused.Err);
        Assert.Equal([-1], ended);
        // Its launcher was killed (frozen with the qube, it goes when the qube thaws): only the qube's own processes stay.
        q.T.Manager.Unpause(target);
        string[] launchers = [];
        for (var i = 0; i < 200; i++, await Task.Delay(10))
        {
            launchers = [.. File.ReadAllLines(q.T.Cgroups.PidsFile(target))
                .Select(pid => File.Exists($"/proc/{pid}/cmdline") ? File.ReadAllText($"/proc/{pid}/cmdline") : "")
                .Where(cmd => cmd.Contains("nsenter", StringComparison.Ordinal) || cmd.Contains("qrexec-service", StringComparison.Ordinal) || cmd.Contains("test.Cat", StringComparison.Ordinal))];
            if (launchers.Length == 0)
                break;
        }
        Assert.Empty(launchers);
    }

    [Fact]
    public async Task A_parked_launcher_runs_the_call_it_is_given_with_the_calls_identity_and_input_even_after_a_pause()
    {
        _q.InstallService("test.Who", "echo \"from=$QREXEC_REMOTE_DOMAIN arg=$QREXEC_SERVICE_ARGUMENT full=$QREXEC_SERVICE_FULL_NAME\"; echo \"pid=$$\" >&2; cat");
        var target = await _q.Start("slot");
        await _q.Service.Runner.PrepareSlotAsync(target, CancellationToken.None);
        // Parked when PrepareSlotAsync returns (not still launching, which a pause would freeze half-way); its pid in
        // the qube is the pid the service will have (it execs in place).
        var parked = File.ReadAllLines(_q.T.Cgroups.PidsFile(target))
                .Where(pid => File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Split('\0') is ["/proc/self/fd/3", "slot", ""])
                .Select(pid => File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("NSpid:", StringComparison.Ordinal)).Split('\t')[^1])
                .FirstOrDefault();
        Assert.NotNull(parked);
        // A preloaded disposable is frozen with its parked launcher and thawed when taken.
        _q.T.Manager.Pause(target);
        _q.T.Manager.Unpause(target);
        var result = await _q.FromDom0(target, "test.Who", "x1", stdin: "input line 1\ninput line 2\n");
        Assert.True(result.Code == 0, result.ToString());
        // The call line is consumed byte by byte: all of the call's own input reaches the service.
        Assert.Equal("from=dom0 arg=x1 full=test.Who+x1\ninput line 1\ninput line 2\n", result.Out);
        Assert.Equal($"pid={parked}\n", result.Err); // the parked launcher ran it
        // The slot is used once: the next call launches as usual, with its own identity.
        var again = await _q.FromDom0(target, "test.Who", "", stdin: "");
        Assert.Equal("from=dom0 arg= full=test.Who\n", again.Out);
        Assert.NotEqual($"pid={parked}\n", again.Err);
    }
}
