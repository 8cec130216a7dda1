using System.Net.Sockets;
using System.Text;
using QubesActors.AdminApi.Wire;
using Xunit;

namespace QubesActors.IntegrationTests.Policy;

/// <summary>One qubesd with the default layout and a policy socket, shared by the policy tests.</summary>
public sealed class PolicyDaemonFixture : IAsyncLifetime
{
    public string StateDir { get; } = Path.Combine(Path.GetTempPath(), $"qa-policy-{Guid.NewGuid():N}");
    public string PolicySocket => Path.Combine(StateDir, "policy.sock");
    public string RuntimeDir => Path.Combine(StateDir, "policy.d");
    private QubesdProcess? _daemon;

    public QubesdProcess Daemon => _daemon ?? throw new InvalidOperationException("daemon not started");

    public async Task InitializeAsync() =>
        _daemon = await QubesdProcess.StartAsync(StateDir, extraArgs: ["--policy-socket", PolicySocket, "--set", "qubesd.policy.reload-delay=50ms"]);

    public Task DisposeAsync()
    {
        _daemon?.Dispose();
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }

    /// <summary>One request on the policy socket, as qrexec-daemon sends it; everything the daemon answers before closing.</summary>
    public async Task<string> Ask(string request, bool eof = false)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(PolicySocket));
        await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None);
        if (eof)
            socket.Shutdown(SocketShutdown.Send);
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            answer.Write(buffer, 0, n);
        return Encoding.ASCII.GetString(answer.ToArray());
    }

    public async Task<string> UuidOf(string qube)
    {
        var line = (await Daemon.CallAsync("admin.vm.List", qube)).OkText.Trim();
        return line[(line.IndexOf("uuid=", StringComparison.Ordinal) + 5)..];
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
/// <summary>The qrexec-policy-daemon protocol on a real qubesd, byte for byte (docs/qrexec-policy.md §7), and hot reload.</summary>
public sealed class PolicySocketTests(PolicyDaemonFixture fixture) : IClassFixture<PolicyDaemonFixture>
{
    private static string Request(string source, string target, string service, params string[] extra) =>
        $"source={source}\nintended_target={target}\nservice_and_arg={service}\n{string.Concat(extra.Select(e => e + "\n"))}\n";

    [Fact]
    public async Task Allow_to_dom0_to_a_qube_and_to_a_disposable()
    {
        Assert.Equal("user=DEFAULT\nresult=allow\ntarget=dom0\nautostart=True\nrequested_target=@default",
            await fixture.Ask(Request("work", "", "qubes.GetDate")));
        Assert.Equal($"user=DEFAULT\nresult=allow\ntarget=@dispvm:default-dvm\ntarget_uuid=@dispvm:uuid:{await fixture.UuidOf("default-dvm")}\nautostart=True\nrequested_target=@dispvm",
            await fixture.Ask(Request("work", "@dispvm", "qubes.VMShell")));
        // ask, answered yes for the requested target
        Assert.Equal($"user=DEFAULT\nresult=allow\ntarget=personal\ntarget_uuid=uuid:{await fixture.UuidOf("personal")}\nautostart=True\nrequested_target=personal",
            await fixture.Ask(Request("work", "personal", "qubes.Filecopy", "assume_yes_for_ask=yes")));
    }

    [Fact]
    public async Task Denials_and_evaluation_only()
    {
        Assert.Equal("result=deny", await fixture.Ask(Request("work", "personal", "qubes.VMShell")));
        Assert.Equal("result=deny", await fixture.Ask(Request("work", "dom0", "admin.vm.List")));
        // no one to ask (no GUI): denied
        Assert.Equal("result=deny", await fixture.Ask(Request("work", "personal", "qubes.Filecopy")));
        Assert.Equal("result=deny", await fixture.Ask(Request("work", "personal", "qubes.Filecopy", "just_evaluate=yes")));
        Assert.Equal("result=allow", await fixture.Ask(Request("work", "@dispvm", "qubes.VMShell", "just_evaluate=yes", "assume_yes_for_ask=no")));
        // a call to itself
        Assert.Equal("result=deny", await fixture.Ask(Request("work", "work", "qubes.Filecopy", "assume_yes_for_ask=yes")));
        Assert.Equal("result=deny", await fixture.Ask(Request("work", "", "qubes.GetDate", "requested_source=personal")));
    }

    [Theory]
    [InlineData("source=work\nintended_target=x\nservice_and_arg=qubes.GetDate\nfoo=bar\n\n")]
    [InlineData("source=work\nsource=work\nintended_target=x\nservice_and_arg=qubes.GetDate\n\n")]
    [InlineData("source=work\nservice_and_arg=qubes.GetDate\n\n")]
    [InlineData("source=work\nintended_target=x\nservice_and_arg=qubes.GetDate\njust_evaluate=true\n\n")]
    [InlineData("source=work\nintended_target\nservice_and_arg=qubes.GetDate\n\n")]
    [InlineData("\n")]
    public async Task A_malformed_request_closes_the_connection_without_an_answer(string request) =>
        Assert.Equal("", await fixture.Ask(request));

    [Fact]
    public async Task The_request_may_end_with_EOF_and_the_socket_is_group_accessible()
    {
        Assert.Equal("result=allow", await fixture.Ask("source=work\nintended_target=@dispvm\nservice_and_arg=qubes.VMShell\njust_evaluate=yes\n", eof: true));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(fixture.PolicySocket));
    }

    [Fact]
    public async Task An_include_file_edited_by_hand_is_reloaded_too()
    {
        var include = Path.Combine(fixture.RuntimeDir, "include", "admin-global-rwx");
        var original = await File.ReadAllTextAsync(include);
        var request = Request("vault", "dom0", "admin.label.Create+teal", "just_evaluate=yes");
        Assert.Equal("result=deny", await fixture.Ask(request));
        try
        {
            await File.WriteAllTextAsync(include, original + "vault @adminvm allow\n");
            await PolicyDaemonFixture.WaitUntilAsync(async () => await fixture.Ask(request) == "result=allow");
        }
        finally
        {
            await File.WriteAllTextAsync(include, original);
        }
        await PolicyDaemonFixture.WaitUntilAsync(async () => await fixture.Ask(request) == "result=deny");
    }

    [Fact]
    public async Task A_file_written_in_the_runtime_directory_decides_the_next_call_and_a_broken_one_denies_all()
    {
        var file = Path.Combine(fixture.RuntimeDir, "20-socket-test.policy");
        try
        {
            await File.WriteAllTextAsync(file, "qubes.SocketTest * vault @default allow target=dom0\n");
            await PolicyDaemonFixture.WaitUntilAsync(async () => (await fixture.Ask(Request("vault", "", "qubes.SocketTest", "just_evaluate=yes"))) == "result=allow");

            await File.WriteAllTextAsync(file, "qubes.SocketTest * vault @default allow target=dom0\nqubes.SocketTest * vault\n");
            await PolicyDaemonFixture.WaitUntilAsync(async () => (await fixture.Daemon.CallAsync("policy.Status", "dom0")).OkText.StartsWith("status=error\n", StringComparison.Ordinal));
            var status = (await fixture.Daemon.CallAsync("policy.Status", "dom0")).OkText;
            Assert.Contains($"error={file}:2: wrong number of fields", status, StringComparison.Ordinal);
            Assert.Equal("result=deny", await fixture.Ask(Request("vault", "", "qubes.SocketTest", "just_evaluate=yes")));
            Assert.Equal("result=deny", await fixture.Ask(Request("work", "", "qubes.GetDate")));
        }
        finally
        {
            File.Delete(file);
        }
        await PolicyDaemonFixture.WaitUntilAsync(async () => (await fixture.Daemon.CallAsync("policy.Status", "dom0")).OkText.StartsWith("status=ok\n", StringComparison.Ordinal));
        Assert.Equal("result=deny", await fixture.Ask(Request("vault", "", "qubes.SocketTest", "just_evaluate=yes")));
    }
}
