using System.Text;
using QubesActors.Sandbox.Launch;
using QubesActors.Sandbox.Qrexec;
using Xunit;

namespace QubesActors.Sandbox.Tests.Qrexec;

/// <summary>The channel's framing and bounds, the request's validation and the command lines (no sandbox).</summary>
public sealed class QrexecPureTests
{
    private static Task<QrexecFrame?> Read(byte[] bytes, bool fromClient) => QrexecProtocol.ReadAsync(new MemoryStream(bytes), fromClient, CancellationToken.None);

    [Fact]
    public async Task Frames_round_trip_in_sequence_and_a_clean_end_of_stream_reads_as_null()
    {
        var stream = new MemoryStream([
            .. QrexecProtocol.Encode(QrexecFrameType.Stdout, "out"u8), .. QrexecProtocol.Encode(QrexecFrameType.Stderr, []), .. QrexecProtocol.EncodeExit(-3),
            .. QrexecProtocol.EncodeRefused("nope"),
        ]);
        var f1 = await QrexecProtocol.ReadAsync(stream, fromClient: false, CancellationToken.None);
        Assert.Equal(QrexecFrameType.Stdout, f1!.Value.Type);
        Assert.Equal("out", Encoding.ASCII.GetString(f1.Value.Payload.Span));
        Assert.Equal(0, (await QrexecProtocol.ReadAsync(stream, false, CancellationToken.None))!.Value.Payload.Length);
        Assert.Equal(-3, QrexecProtocol.DecodeExit((await QrexecProtocol.ReadAsync(stream, false, CancellationToken.None))!.Value.Payload.Span));
        Assert.Equal("nope", Encoding.UTF8.GetString((await QrexecProtocol.ReadAsync(stream, false, CancellationToken.None))!.Value.Payload.Span));
        Assert.Null(await QrexecProtocol.ReadAsync(stream, false, CancellationToken.None));
        Assert.Equal([6, 0, 0, 0, 4, 0, 0, 1, 0], QrexecProtocol.EncodeExit(256));
    }

    [Theory]
    [InlineData(new byte[] { 99, 0, 0, 0, 0 }, true)] // unknown type
    [InlineData(new byte[] { 0, 0, 0, 0, 0 }, true)]
    [InlineData(new byte[] { 4, 0, 0, 0, 0 }, true)] // stdout is the server's
    [InlineData(new byte[] { 2, 0, 0, 0, 0 }, false)] // stdin is the client's
    [InlineData(new byte[] { 2, 0, 1, 0, 1 }, true)] // 65537 bytes of stdin: one over the bound
    [InlineData(new byte[] { 2, 0xff, 0xff, 0xff, 0xff }, true)] // 4 GiB: refused before anything is allocated
    [InlineData(new byte[] { 3, 0, 0, 0, 1, 0 }, true)] // stdin EOF carries nothing
    [InlineData(new byte[] { 6, 0, 0, 0, 3, 0, 0, 0 }, false)] // an exit code is 4 bytes
    [InlineData(new byte[] { 7, 0, 0, 4, 1 }, false)] // a refusal message is at most 1024 bytes
    [InlineData(new byte[] { 1, 0, 0, 4, 66 }, true)] // a request is at most 64 + 1 + 1024 bytes
    [InlineData(new byte[] { 2, 0, 0 }, true)] // cut in the header
    [InlineData(new byte[] { 2, 0, 0, 0, 3, 65 }, true)] // cut in the payload
    public async Task Malformed_frames_are_refused(byte[] bytes, bool fromClient) =>
        await Assert.ThrowsAsync<QrexecProtocolException>(() => Read(bytes, fromClient));

    [Fact]
    public async Task Frames_at_their_bounds_are_accepted()
    {
        var stdin = QrexecProtocol.Encode(QrexecFrameType.Stdin, new byte[QrexecProtocol.MaxPayload]);
        Assert.Equal(QrexecProtocol.MaxPayload, (await Read(stdin, true))!.Value.Payload.Length);
        Assert.Throws<ArgumentException>(() => QrexecProtocol.Encode(QrexecFrameType.Stdin, new byte[QrexecProtocol.MaxPayload + 1]));
        // A long refusal message is cut to the bound rather than breaking the frame.
        Assert.Equal(QrexecProtocol.MaxRefused, (await Read(QrexecProtocol.EncodeRefused(new string('x', 5000)), false))!.Value.Payload.Length);
    }

    [Theory]
    [InlineData("work", "qubes.Filecopy", "work", "qubes.Filecopy", "")]
    [InlineData("@dispvm:fedora-dvm", "qubes.OpenInVM", "@dispvm:fedora-dvm", "qubes.OpenInVM", "")]
    [InlineData("@default", "qubes.VMExec+ls+-2Fetc", "@default", "qubes.VMExec", "ls+-2Fetc")]
    [InlineData("dom0", "my-service+a.b_c", "dom0", "my-service", "a.b_c")]
    public void Requests_are_parsed_into_target_service_and_argument(string target, string full, string t, string s, string a) =>
        Assert.Equal(new QrexecRequest(t, s, a), QrexecProtocol.ParseRequest(Encoding.ASCII.GetBytes(target + "\0" + full)));

    [Theory]
    [InlineData("work qubes.Filecopy")] // no separator
    [InlineData("\0qubes.Filecopy")] // no target
    [InlineData("work\0")] // no service
    [InlineData("a/b\0qubes.Filecopy")]
    [InlineData("a b\0qubes.Filecopy")]
    [InlineData("work\0../../bin/sh")]
    [InlineData("work\0.hidden")]
    [InlineData("work\0qubes.Filecopy+a/b")]
    [InlineData("work\0qubes.Filecopy+a b")]
    [InlineData("work\0+arg")]
    [InlineData("work\0a\0b")]
    [InlineData("work\0serv\u00e9")]
    [InlineData("work\0qubes.Filecopy\n")]
    public void Invalid_requests_are_refused(string payload) =>
        Assert.Throws<QrexecProtocolException>(() => QrexecProtocol.ParseRequest(Encoding.UTF8.GetBytes(payload)));

    [Fact]
    public void Names_over_their_bounds_are_refused()
    {
        Assert.Throws<QrexecProtocolException>(() => QrexecProtocol.ParseRequest(Encoding.ASCII.GetBytes(new string('a', 65) + "\0svc")));
        Assert.Throws<QrexecProtocolException>(() => QrexecProtocol.ParseRequest(Encoding.ASCII.GetBytes("w\0" + new string('s', 65))));
        Assert.Throws<QrexecProtocolException>(() => QrexecProtocol.ParseRequest(Encoding.ASCII.GetBytes("w\0svc+" + new string('a', 1021))));
        Assert.Equal(1000, QrexecProtocol.ParseRequest(Encoding.ASCII.GetBytes("w\0svc+" + new string('a', 1000))).Argument.Length);
    }

    [Fact]
    public void A_service_joins_the_cgroups_then_enters_through_nsenter_executing_the_host_helper_by_descriptor()
    {
        var args = new ServiceExecCommand(4242, ["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"], "/opt/qa/guest/libexec/qrexec-service-exec",
            ["service", "qubes.VMExec", "ls"]).Arguments();
        Assert.Equal("-c", args[0]);
        var dashDash = args.ToList().IndexOf("--");
        Assert.Equal(["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"], args.Skip(3).Take(dashDash - 3));
        Assert.Contains("exec 3< \"$1\"", args[1]);
        Assert.Equal(["/opt/qa/guest/libexec/qrexec-service-exec", "/usr/bin/nsenter", "-t", "4242", "--all", "--root", "--wd", "/proc/self/fd/3",
            "service", "qubes.VMExec", "ls"], args.Skip(dashDash + 1));

        var env = ServiceExecCommand.Environment("work", "qubes.VMExec", "ls");
        Assert.Equal("work", env["QREXEC_REMOTE_DOMAIN"]);
        Assert.Equal("qubes.VMExec+ls", env["QREXEC_SERVICE_FULL_NAME"]);
        Assert.Equal("ls", env["QREXEC_SERVICE_ARGUMENT"]);
        Assert.Equal("/rw/home", env["HOME"]);
        Assert.EndsWith(":/run/qubes/bin", env["PATH"]);
        Assert.Equal(5, env.Count);
    }

    [Fact]
    public void The_guest_bundle_is_bound_read_only_inside_the_control_directory_and_on_the_path()
    {
        var args = new BwrapCommand("work", "/r", false, "/p", "/run", ["/cg/cgroup.procs"], null, GuestBin: "/opt/qa/guest/bin").Arguments().ToList();
        var run = args.IndexOf("/run/qubes");
        var bin = args.IndexOf("/opt/qa/guest/bin");
        Assert.True(bin > run, "the bundle must be bound after /run/qubes, else that bind hides it");
        Assert.Equal(["--ro-bind", "/opt/qa/guest/bin", "/run/qubes/bin"], args.Skip(bin - 1).Take(3));
        Assert.Equal("/usr/sbin:/usr/bin:/sbin:/bin:/run/qubes/bin", args[args.IndexOf("PATH") + 1]);
        Assert.DoesNotContain("/run/qubes/bin", new BwrapCommand("work", "/r", false, "/p", "/run", [], null).Arguments());
    }

    [Fact]
    public void The_guest_bundle_is_built_into_the_output_of_projects_referencing_the_sandbox()
    {
        foreach (var program in new[] { "bin/qrexec-client-vm", "bin/qfile-agent", "bin/qfile-unpacker", "bin/qubes-vmexec", "bin/qvm-copy-to-vm", "bin/qvm-copy",
                     "bin/qvm-open-in-vm", "bin/qvm-open-in-dvm", "bin/qvm-run-vm", "libexec/qrexec-service-exec", "qubes-rpc/qubes.VMShell",
                     "qubes-rpc/qubes.VMExec", "qubes-rpc/qubes.Filecopy", "qubes-rpc/qubes.OpenInVM", "qubes-rpc/qubes.GetDate" })
        {
            var path = Path.Combine(Guest.GuestBundle.Root, program);
            Assert.True(File.Exists(path), $"{path} is missing");
            Assert.True(File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute), $"{path} is not executable");
        }
    }

    [Fact]
    public void The_busybox_template_has_the_services_and_Qubes_virtual_dns()
    {
        var root = Path.Combine(Path.GetTempPath(), "qa-tpl-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            Storage.BusyboxTemplate.Build(root);
            Assert.Equal("nameserver 10.139.1.1\nnameserver 10.139.1.2\n", File.ReadAllText(Path.Combine(root, "etc/resolv.conf")));
            foreach (var service in new[] { "qubes.VMShell", "qubes.VMExec", "qubes.Filecopy", "qubes.OpenInVM", "qubes.GetDate" })
                Assert.True(File.GetUnixFileMode(Path.Combine(root, "etc/qubes-rpc", service)).HasFlag(UnixFileMode.OtherExecute), service);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
