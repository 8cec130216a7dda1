using System.Text;
using QubesActors.Sandbox.Qrexec;
using Xunit;

namespace QubesActors.Sandbox.Tests.Qrexec;

/// <summary>dom0's entry points, the per-qube bound on open calls, and a channel across a qubesd restart.</summary>
public sealed class QrexecDom0AndAdoptionTests : IAsyncLifetime
{
    private QrexecFixture _q = null!;

    public Task InitializeAsync()
    {
        _q = new QrexecFixture(new FakeRouter(call => call.Service == "test.Forbidden" ? new QrexecRoute.Denied("no") : null), maxCallsPerQube: 3);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _q.DisposeAsync();

    [Fact]
    public async Task dom0_calls_a_service_through_the_same_router_as_caller_dom0()
    {
        var b = await _q.Start("b");
        var r = await _q.FromDom0(b, "test.Echo", "x", "hello\n");
        Assert.Equal(3, r.Code);
        Assert.Equal($"got hello from dom0 for test.Echo+x arg=x\n", r.Out);
        Assert.Equal(new QrexecCall("dom0", b, "test.Echo", "x"), Assert.Single(_q.Router.Calls));

        var denied = await _q.FromDom0(b, "test.Forbidden");
        Assert.Equal(126, denied.Code);
        Assert.Equal("Request refused: no\n", denied.Err);
    }

    [Fact]
    public async Task A_target_killed_under_a_call_ends_it_with_137_and_a_stopped_target_is_refused()
    {
        _q.InstallService("test.Forever", "echo started; exec sleep 1000");
        var b = await _q.Start("b");
        var started = new TaskCompletionSource();
        var output = new NotifyingStream(started);
        var call = _q.Service.CallFromDom0Async(b, "test.Forever", "", new MemoryStream(), output, new MemoryStream(), CancellationToken.None);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await _q.T.Manager.KillAsync(b, CancellationToken.None);
        Assert.Equal(137, await call.WaitAsync(TimeSpan.FromSeconds(10)));

        var refused = await _q.FromDom0(b, "test.Echo");
        Assert.Equal(126, refused.Code);
        Assert.Contains("is not running", refused.Err);
        Assert.Equal(-1, _q.Router.Ended.Last().Code);
    }

    private sealed class NotifyingStream(TaskCompletionSource written) : MemoryStream
    {
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
        {
            written.TrySetResult();
            return base.WriteAsync(buffer, offset, count, ct);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            written.TrySetResult();
            return base.WriteAsync(buffer, ct);
        }
    }

    [Fact]
    public async Task The_dom0_socket_is_root_only_and_speaks_the_channel_protocol_as_dom0()
    {
        var b = await _q.Start("b");
        var path = Path.Combine(_q.T.Storage, "dom0-qrexec.sock");
        _q.Service.ListenDom0(path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        using var output = new MemoryStream();
        using var errors = new MemoryStream();
        var code = await QrexecClient.CallAsync(path, b, "test.Echo", new MemoryStream("via socket\n"u8.ToArray()), output, errors, CancellationToken.None);
        Assert.Equal(3, code);
        Assert.Equal("got via socket from dom0 for test.Echo arg=\n", Encoding.UTF8.GetString(output.ToArray()));
        Assert.Equal("to stderr\n", Encoding.UTF8.GetString(errors.ToArray()));

        using var refusedErr = new MemoryStream();
        Assert.Equal(126, await QrexecClient.CallAsync(path, b, "test.Forbidden", new MemoryStream(), new MemoryStream(), refusedErr, CancellationToken.None));
        Assert.Equal("Request refused: no\n", Encoding.UTF8.GetString(refusedErr.ToArray()));
        Assert.All(_q.Router.Calls, c => Assert.Equal("dom0", c.Caller));
    }

    [Fact]
    public async Task A_qube_has_a_bounded_number_of_calls_open_and_more_are_refused_until_one_ends()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var path = Path.Combine(_q.T.Run(a), SandboxManager.ChannelFile);
        var open = new List<Stream>();
        for (var i = 0; i < 3; i++)
        {
            var channel = await QrexecCallTests.Connect(path);
            await channel.WriteAsync(QrexecProtocol.EncodeRequest(b, "test.Cat"));
            await channel.WriteAsync(QrexecProtocol.Encode(QrexecFrameType.Stdin, "ping\n"u8));
            // Echoed back: the call is running.
            Assert.Equal(QrexecFrameType.Stdout, (await QrexecProtocol.ReadAsync(channel, fromClient: false, CancellationToken.None))!.Value.Type);
            open.Add(channel);
        }
        Assert.Equal(3, _q.Service.OpenCalls(a));
        var refused = await _q.Sh(a, $"echo x | qrexec-client-vm {b} test.Cat; echo \"rc=$?\"");
        Assert.Equal("rc=126\n", refused.Out);
        Assert.Contains("too many qrexec calls", refused.Err);
        // Another qube is not affected by A's calls.
        var c = await _q.Start("c");
        Assert.Equal("y\n", (await _q.Sh(c, $"echo y | qrexec-client-vm {b} test.Cat")).Out);

        await open[0].WriteAsync(QrexecProtocol.Encode(QrexecFrameType.StdinEof, []));
        var (_, code) = await QrexecCallTests.ReadUntilExit(open[0]);
        Assert.Equal(0, code);
        foreach (var s in open)
            await s.DisposeAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (_q.Service.OpenCalls(a) > 0)
            await Task.Delay(20, timeout.Token);
        Assert.Equal("z\n", (await _q.Sh(a, $"echo z | qrexec-client-vm {b} test.Cat")).Out);
    }

    [Fact]
    public async Task The_channel_survives_a_qubesd_restart_the_new_manager_adopts_and_serves_it()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        Assert.Equal("before\n", (await _q.Sh(a, $"echo before | qrexec-client-vm {b} test.Cat")).Out);

        // While qubesd is away, A puts a symlink where its channel was (to a host path, as the host resolves it):
        // the new channel replaces it and changes nothing through it.
        var bait = Path.Combine(_q.T.Storage, "bait");
        File.WriteAllText(bait, "host file\n");
        File.SetUnixFileMode(bait, (UnixFileMode)Convert.ToInt32("644", 8));
        await _q.Sh(a, $"rm -f /run/qubes/qrexec.sock && ln -s {bait} /run/qubes/qrexec.sock");

        var next = await _q.RestartDaemon();
        Assert.Equal((UnixFileMode)Convert.ToInt32("644", 8), File.GetUnixFileMode(bait));
        Assert.Equal("host file\n", File.ReadAllText(bait));
        Assert.Contains(a, next.RunningNames);
        var r = await QrexecFixture.Sh(_q.Service.Runner, a, $"echo after | qrexec-client-vm {b} test.Echo");
        Assert.Equal($"got after from {a} for test.Echo arg=\n", r.Out);

        // Teardown removes the channel.
        await next.ShutdownAsync(a, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.False(File.Exists(Path.Combine(_q.T.Run(a), SandboxManager.ChannelFile)));
    }
}
