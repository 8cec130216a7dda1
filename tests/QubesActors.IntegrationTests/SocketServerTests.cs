using System.Net.Sockets;
using System.Text;
using QubesActors.AdminApi.Client;
using QubesActors.AdminApi.Methods;
using QubesActors.AdminApi.Server;
using QubesActors.AdminApi.Wire;
using QubesActors.Runtime.Actors;
using Xunit;

namespace QubesActors.IntegrationTests;

/// <summary>The Unix socket server in-process, over a fake collection.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SocketServerTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qa-sock-").FullName;
    private readonly FakeGateway _qubes = new();
    private readonly List<string> _log = [];
    private AdminSocketServer _server = null!;

    private string SocketPath => Path.Combine(_dir, "s.sock");

    private AdminSocketServer NewServer(TimeSpan? readTimeout = null) => new(new AdminServerOptions
    {
        SocketPath = SocketPath,
        ReadTimeout = readTimeout ?? TimeSpan.FromSeconds(20),
        MaxConnections = 4,
        Log = m => { lock (_log) _log.Add(m); },
    }, new AdminDispatcher(_qubes, MethodTable.Default));

    public Task InitializeAsync()
    {
        _server = NewServer();
        _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static async Task<byte[]> RawExchange(string path, byte[] request, bool sendEof = true)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await socket.SendAsync(request, SocketFlags.None);
        if (sendEof)
            socket.Shutdown(SocketShutdown.Send);
        using var response = new MemoryStream();
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
                response.Write(buffer, 0, n);
        }
        catch (SocketException)
        {
            // reset by the server: no response
        }
        return response.ToArray();
    }

    [Fact]
    public async Task Call_is_answered_and_the_connection_closed()
    {
        var bytes = await RawExchange(SocketPath, Encoding.ASCII.GetBytes("admin.vm.tag.Get+work-tag dom0 name work\0"));
        Assert.Equal(Encoding.ASCII.GetBytes("0\u00001"), bytes);
        var error = await RawExchange(SocketPath, Encoding.ASCII.GetBytes("admin.vm.List+ dom0 name ghost\0"));
        Assert.Equal(Encoding.ASCII.GetBytes("2\0QubesVMNotFoundError\0\0No such domain: 'ghost'\0"), error);
    }

    [Fact]
    public async Task Socket_is_given_to_the_configured_group_when_it_exists()
    {
        // 'daemon' (gid 1) exists on every Debian system; the tests run as root, who may give files to any group.
        var gid = SocketGroup.Find("daemon");
        Assert.NotNull(gid);
        var path = Path.Combine(_dir, "g.sock");
        await using (var server = new AdminSocketServer(new AdminServerOptions { SocketPath = path, SocketGroup = "daemon" }, new AdminDispatcher(_qubes, MethodTable.Default)))
        {
            server.Start();
            Assert.Equal($"{gid}", await StatGroup(path));
        }
        var missing = Path.Combine(_dir, "m.sock");
        await using (var server = new AdminSocketServer(new AdminServerOptions { SocketPath = missing, SocketGroup = "no-such-group-here" }, new AdminDispatcher(_qubes, MethodTable.Default)))
        {
            server.Start();
            // No such group: the socket keeps the daemon's group, like any file it creates.
            Assert.Equal(await StatGroup(_dir), await StatGroup(missing));
        }
        Assert.Null(SocketGroup.Find("no-such-group-here"));
    }

    private static async Task<string> StatGroup(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%g", path]) { RedirectStandardOutput = true })!;
        var output = await stat.StandardOutput.ReadToEndAsync();
        await stat.WaitForExitAsync();
        return output.Trim();
    }

    [Fact]
    public void Socket_file_has_mode_0660()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(SocketPath));
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public async Task Caller_identity_comes_from_SO_PEERCRED()
    {
        var reply = await new AdminClient(SocketPath).CallAsync("admin.vm.Start", "work");
        Assert.True(reply.IsOk, reply.ToString());
        var start = Assert.IsType<QubesProtocol.StartQube>(Assert.Single(_qubes.Commands));
        Assert.Equal("dom0", start.Caller.Name);
        Assert.Equal(Environment.ProcessId, start.Caller.Pid);
        Assert.NotNull(start.Caller.Uid);
    }

    [Theory]
    [InlineData("admin.vm.List+ dom0 name dom0")]
    [InlineData("admin.vm.List+ dom0 name\0")]
    [InlineData("admin.vm.List+ dom0 other dom0\0")]
    public async Task Framing_error_closes_without_a_response(string request)
    {
        Assert.Empty(await RawExchange(SocketPath, Encoding.ASCII.GetBytes(request)));
        await Assert.ThrowsAsync<IOException>(() => new AdminClient(SocketPath).CallRawAsync(Encoding.ASCII.GetBytes(request)));
    }

    [Fact]
    public async Task Request_over_65536_bytes_closes_without_a_response()
    {
        var header = Encoding.ASCII.GetBytes("admin.vm.feature.Set+big dom0 name work\0");
        var request = new byte[RequestFraming.MaxRequestBytes + 1];
        header.CopyTo(request, 0);
        Array.Fill(request, (byte)'a', header.Length, request.Length - header.Length);
        Assert.Empty(await RawExchange(SocketPath, request));
        Assert.Empty(_qubes.Commands);
    }

    [Fact]
    public async Task Client_that_never_sends_EOF_is_dropped_after_the_read_timeout()
    {
        var path = Path.Combine(_dir, "slow.sock");
        await using var server = new AdminSocketServer(new AdminServerOptions
        {
            SocketPath = path,
            ReadTimeout = TimeSpan.FromMilliseconds(500),
            Log = m => { lock (_log) _log.Add(m); },
        }, new AdminDispatcher(_qubes, MethodTable.Default));
        server.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Empty(await RawExchange(path, Encoding.ASCII.GetBytes("admin.vm.List+ dom0 name dom0\0"), sendEof: false));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(9));
        lock (_log)
            Assert.Contains(_log, l => l.Contains("no complete request"));
    }

    [Fact]
    public async Task Live_socket_refuses_a_second_server()
    {
        await using var second = NewServer();
        Assert.Throws<AdminSocketInUseException>(second.Start);
        Assert.True((await new AdminClient(SocketPath).CallAsync("admin.vm.List", "dom0")).IsOk);
    }

    [Fact]
    public async Task Stale_socket_is_replaced_and_a_regular_file_is_not()
    {
        var stale = Path.Combine(_dir, "stale.sock");
        // .NET unlinks a bound path on Dispose; moving the file away first leaves it behind, as a SIGKILLed daemon does.
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            dead.Bind(new UnixDomainSocketEndPoint(stale + ".tmp"));
            File.Move(stale + ".tmp", stale);
        }
        Assert.True(File.Exists(stale));
        await using (var server = new AdminSocketServer(new AdminServerOptions { SocketPath = stale }, new AdminDispatcher(_qubes, MethodTable.Default)))
        {
            server.Start();
            Assert.True((await new AdminClient(stale).CallAsync("admin.vm.List", "dom0")).IsOk);
        }
        Assert.False(File.Exists(stale));

        var regular = Path.Combine(_dir, "regular");
        File.WriteAllText(regular, "not a socket");
        Assert.Throws<IOException>(() => AdminSocketServer.EnsureAvailable(regular));
        Assert.True(File.Exists(regular));
    }

    [Fact]
    public async Task Events_start_with_connection_established_then_stream_notices()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = new List<AdminResponse.Event>();
        await foreach (var frame in new AdminClient(SocketPath).EventsAsync("dom0", cts.Token))
        {
            var e = Assert.IsType<AdminResponse.Event>(frame);
            received.Add(e);
            if (received.Count == 1)
            {
                _qubes.Publish(QubesEventNotice.Of("work", "admin-permission:admin.vm.List"));
                _qubes.Publish(QubesEventNotice.Of("work", "domain-start", ("start_guid", "g")));
            }
            if (received.Count == 2)
                break;
        }
        Assert.Equal(("", "connection-established"), (received[0].Subject, received[0].Name));
        Assert.Equal(("work", "domain-start", "g"), (received[1].Subject, received[1].Name, received[1].Argument("start_guid")));
    }

    [Fact]
    public async Task Event_streams_do_not_hold_call_slots()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var streams = new List<IAsyncEnumerator<AdminResponse>>();
        for (var i = 0; i < 6; i++)
        {
            var stream = new AdminClient(SocketPath).EventsAsync("dom0", cts.Token).GetAsyncEnumerator(cts.Token);
            Assert.True(await stream.MoveNextAsync());
            streams.Add(stream);
        }
        // Six open streams on a server with four call slots: calls are still answered.
        Assert.True((await new AdminClient(SocketPath).CallAsync("admin.vm.List", "dom0", ct: cts.Token)).IsOk);
        foreach (var s in streams)
            await s.DisposeAsync();
    }

    [Fact]
    public async Task Concurrent_clients_are_all_served()
    {
        var client = new AdminClient(SocketPath);
        var replies = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => client.CallAsync("admin.vm.List", "dom0")));
        Assert.All(replies, r => Assert.True(r.IsOk));
    }
}
