using System.Diagnostics;
using QubesActors.Core.Model;
using QubesActors.Runtime.Backend;
using QubesActors.Sandbox.Devices;
using QubesActors.Sandbox.Tests.Sandboxes;
using Xunit;

namespace QubesActors.Sandbox.Tests.Devices;

/// <summary>
/// Real block devices between real sandboxes, as root: loop devices in dom0, image files in a backend qube, device
/// nodes in a frontend. A frontend runs a tiny agent (its /rw/boot.sh) that runs what a test drops into its
/// /run/qubes/cmd as the sandbox's own cap-less root, so reads and writes are tried with the frontend's privileges.
/// Every loop device a test makes is detached at dispose, also after a failure.
/// </summary>
public sealed class BlockDeviceTests : IAsyncLifetime
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);
    private const string Agent = """
        while :; do
          if [ -f /run/qubes/cmd ]; then
            mv /run/qubes/cmd /run/qubes/cmd.sh
            sh /run/qubes/cmd.sh > /run/qubes/out.tmp 2>&1; echo "rc=$?" >> /run/qubes/out.tmp
            mv /run/qubes/out.tmp /run/qubes/out
          fi
          usleep 20000
        done
        """;

    private TestStorage _t = null!;
    private BlockDevices _devices = null!;
    private readonly List<string> _loops = [];
    private readonly List<string> _files = [];

    public Task InitializeAsync()
    {
        _t = new TestStorage();
        _devices = new BlockDevices(_t.Run);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var a in _devices.Attachments.Select(a => a.Frontend).Distinct().ToList())
            await _devices.ForgetFrontendAsync(a);
        foreach (var loop in _loops)
            Process.Start("losetup", ["-d", loop])!.WaitForExit();
        await _t.DisposeAsync();
        foreach (var file in _files)
            File.Delete(file);
    }

    /// <summary>A file in dom0 with <paramref name="text"/> at its start, attached as a loop device (as `losetup` in Qubes' dom0).</summary>
    private (string File, string Loop) Dom0Loop(string text, bool readOnly = false)
    {
        var file = Path.Combine("/var/tmp", "qa-block-" + Guid.NewGuid().ToString("N")[..8] + ".img");
        _files.Add(file);
        using (var f = File.Create(file))
        {
            f.SetLength(1 << 20);
            f.Write(System.Text.Encoding.ASCII.GetBytes(text));
        }
        var info = new ProcessStartInfo("losetup", readOnly ? ["-r", "--find", "--show", file] : ["--find", "--show", file]) { RedirectStandardOutput = true };
        using var p = Process.Start(info)!;
        var loop = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        _loops.Add(loop);
        return (file, Path.GetFileName(loop));
    }

    private async Task<int> StartFrontend(string name)
    {
        _t.Boot(name, Agent);
        await _t.Manager.StartAsync(new SandboxSpec(name, QubeClass.AppVM, TestStorage.Template, 128), CancellationToken.None);
        return _t.Manager.InitPidOf(name);
    }

    /// <summary>Runs <paramref name="script"/> inside the frontend (by its agent) and returns its output, ending in "rc=N".</summary>
    private async Task<string> Inside(string name, string script)
    {
        var run = _t.Run(name);
        File.Delete(Path.Combine(run, "out"));
        File.WriteAllText(Path.Combine(run, "cmd.tmp"), script.Replace("\r\n", "\n") + "\n");
        File.Move(Path.Combine(run, "cmd.tmp"), Path.Combine(run, "cmd"));
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < T)
        {
            if (File.Exists(Path.Combine(run, "out")))
                return File.ReadAllText(Path.Combine(run, "out"));
            await Task.Delay(10);
        }
        throw new TimeoutException($"no answer from {name}; boot log: {(File.Exists(Path.Combine(run, "boot.log")) ? File.ReadAllText(Path.Combine(run, "boot.log")) : "none")}");
    }

    private static string Read(string file, int offset, int count)
    {
        using var f = File.OpenRead(file);
        var buffer = new byte[count];
        f.Position = offset;
        f.ReadExactly(buffer);
        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    private static bool IsBound(string loop) => LoopSysfs.Get(loop) is not null;

    [Fact]
    public async Task A_dom0_loop_device_is_listed_attached_as_xvdi_read_and_written_inside_and_gone_after_detach()
    {
        var (file, loop) = Dom0Loop("hello-from-dom0");
        var dom0 = await _devices.ListAsync(BlockDevices.Dom0, CancellationToken.None);
        var device = Assert.Single(dom0, d => d.Port == loop);
        Assert.Equal(("block", "dom0", file, "b******"), (device.DeviceClass, device.Backend, device.Description, device.Interfaces));
        Assert.StartsWith("file-", device.DeviceId);

        var front = _t.Name("front");
        var pid = await StartFrontend(front);
        var attachment = await _devices.AttachAsync(front, pid, device, new BlockAttachOptions(), CancellationToken.None);
        Assert.Equal(("xvdi", false, loop, false), (attachment.FrontendDev, attachment.ReadOnly, attachment.Loop, attachment.OwnsLoop));

        var output = await Inside(front, """
            ls -l /dev/xvdi | cut -c1-10
            head -c 15 /dev/xvdi; echo
            echo written-inside | dd of=/dev/xvdi bs=512 seek=1 conv=notrunc 2>/dev/null
            """);
        Assert.Equal("brw-rw----\nhello-from-dom0\nrc=0\n", output);
        Assert.Equal("written-inside", Read(file, 512, 14));

        // A second device gets the next name.
        var (_, loop2) = Dom0Loop("second");
        var second = await _devices.AttachAsync(front, pid, (await _devices.ListAsync("dom0", CancellationToken.None)).Single(d => d.Port == loop2),
            new BlockAttachOptions(), CancellationToken.None);
        Assert.Equal("xvdj", second.FrontendDev);
        Assert.Equal("DeviceAlreadyAttached", (await Assert.ThrowsAsync<BlockDeviceException>(() =>
            _devices.AttachAsync(front, pid, device, new BlockAttachOptions(), CancellationToken.None))).QubesError);

        await _devices.DetachAsync(front, device, CancellationToken.None);
        Assert.Equal("gone\nsecond\nrc=0\n", await Inside(front, "[ -e /dev/xvdi ] && echo there || echo gone; head -c 6 /dev/xvdj; echo"));
        Assert.DoesNotContain(File.ReadAllText($"/proc/{pid}/mountinfo"), "/dev/xvdi");
        Assert.True(IsBound(loop), "dom0's own loop device stays: qubesd did not make it");
        Assert.Equal("DeviceNotAssigned", (await Assert.ThrowsAsync<BlockDeviceException>(() =>
            _devices.DetachAsync(front, device, CancellationToken.None))).QubesError);
    }

    [Fact]
    public async Task A_read_only_attach_refuses_writes_inside_and_its_loop_device_is_released_at_detach()
    {
        var (file, loop) = Dom0Loop("read-only-data");
        var device = (await _devices.ListAsync(BlockDevices.Dom0, CancellationToken.None)).Single(d => d.Port == loop);
        var front = _t.Name("ro");
        var pid = await StartFrontend(front);
        var attachment = await _devices.AttachAsync(front, pid, device, BlockAttachOptions.Parse(new Dictionary<string, string> { ["read-only"] = "yes" }),
            CancellationToken.None);
        Assert.True(attachment.ReadOnly);
        Assert.True(attachment.OwnsLoop); // a read-only loop over dom0's writable one
        Assert.NotEqual(loop, attachment.Loop);
        // qubesd's own loop devices are not dom0's devices.
        Assert.DoesNotContain(await _devices.ListAsync(BlockDevices.Dom0, CancellationToken.None), d => d.Port == attachment.Loop);

        // Even after making the node writable (the sandbox's root owns it), the kernel refuses the write.
        var output = await Inside(front, """
            head -c 14 /dev/xvdi; echo
            chmod 666 /dev/xvdi
            echo overwritten | dd of=/dev/xvdi conv=notrunc 2>/dev/null && echo wrote || echo refused
            """);
        Assert.Equal("read-only-data\nrefused\nrc=0\n", output);
        Assert.Equal("read-only-data", Read(file, 0, 14));

        await _devices.DetachAsync(front, device, CancellationToken.None);
        Assert.False(IsBound(attachment.Loop), "the read-only loop qubesd made is released");
        Assert.True(IsBound(loop));
    }

    [Fact]
    public async Task When_the_frontend_stops_nothing_of_the_attachment_remains()
    {
        var (_, loop) = Dom0Loop("x");
        var device = (await _devices.ListAsync(BlockDevices.Dom0, CancellationToken.None)).Single(d => d.Port == loop);
        var front = _t.Name("stop");
        var pid = await StartFrontend(front);
        var attachment = await _devices.AttachAsync(front, pid, device, new BlockAttachOptions(ReadOnly: true), CancellationToken.None);
        Assert.True(IsBound(attachment.Loop));

        await _t.Manager.KillAsync(front, CancellationToken.None);
        await _devices.ForgetFrontendAsync(front);
        Assert.Empty(_devices.Attachments);
        Assert.False(IsBound(attachment.Loop));
        // The device can be attached again, to a new frontend.
        var again = _t.Name("again");
        var pid2 = await StartFrontend(again);
        Assert.Equal("xvdi", (await _devices.AttachAsync(again, pid2, device, new BlockAttachOptions(), CancellationToken.None)).FrontendDev);
    }

    [Fact]
    public async Task A_backend_qube_exposes_its_image_files_refuses_hostile_ones_and_its_devices_go_when_it_stops()
    {
        var usb = _t.Name("usb");
        _t.Boot(usb, """
            mkdir -p /run/qubes/block && cd /run/qubes/block
            dd if=/dev/zero of=.sda bs=1024 count=1024 2>/dev/null
            echo usb-stick-data | dd of=.sda conv=notrunc 2>/dev/null
            mv .sda sda
            dd if=/dev/zero of=cdrom bs=1024 count=64 2>/dev/null; chmod 444 cdrom
            ln -s /etc/shadow evil; ln -s /var/tmp hostdir
            mkdir dir; mkfifo fifo; touch empty
            dd if=/dev/zero of=odd bs=100 count=1 2>/dev/null
            dd if=/dev/zero of=Bad:Name bs=512 count=1 2>/dev/null
            touch /run/qubes/exposed
            """);
        await _t.Manager.StartAsync(new SandboxSpec(usb, QubeClass.AppVM, TestStorage.Template, 128), CancellationToken.None);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(_t.Run(usb), "exposed")) && clock.Elapsed < T)
            await Task.Delay(10);

        var events = new List<BackendEvent>();
        var lost = new List<(BlockAttachment, string)>();
        _devices.Changed += e => { lock (events) events.Add(e); };
        _devices.AttachmentLost += (a, why) => { lock (lost) lost.Add((a, why)); };
        _devices.Watch(usb);
        await _devices.PollAsync(CancellationToken.None);
        var listed = await _devices.ListAsync(usb, CancellationToken.None);
        Assert.Equal(["cdrom", "sda"], listed.Select(d => d.Port));
        Assert.Equal(["cdrom (64 KiB, read-only)", "sda (1 MiB)"], listed.Select(d => d.Description));
        Assert.Equal(["cdrom", "sda"], events.OfType<BackendEvent.DeviceAppeared>().Where(e => e.Domain == usb).Select(e => e.Device.Port).Order());

        var front = _t.Name("front");
        var pid = await StartFrontend(front);
        // Hostile or invalid ports are refused, whatever the qube put there.
        foreach (var port in new[] { "evil", "hostdir", "dir", "fifo", "empty", "odd", "Bad:Name", "../../etc/passwd", "..", "absent" })
        {
            var e = await Assert.ThrowsAsync<BlockDeviceException>(() => _devices.AttachAsync(front, pid, new BackendDevice("block", usb, port, "*", ""),
                new BlockAttachOptions(), CancellationToken.None));
            Assert.Equal("ProtocolError", e.QubesError);
        }
        Assert.Empty(_devices.Attachments);

        var sda = await _devices.AttachAsync(front, pid, listed.Single(d => d.Port == "sda"), new BlockAttachOptions(), CancellationToken.None);
        var cdrom = await _devices.AttachAsync(front, pid, listed.Single(d => d.Port == "cdrom"), new BlockAttachOptions(), CancellationToken.None);
        Assert.Equal(("xvdi", false, "xvdj", true), (sda.FrontendDev, sda.ReadOnly, cdrom.FrontendDev, cdrom.ReadOnly));
        Assert.Equal("usb-stick-data\nwritten\nrefused\nrc=0\n", await Inside(front, """
            head -c 14 /dev/xvdi; echo
            echo from-frontend | dd of=/dev/xvdi bs=512 seek=1 conv=notrunc 2>/dev/null && echo written
            echo x | dd of=/dev/xvdj conv=notrunc 2>/dev/null && echo wrote || echo refused
            """));
        Assert.Equal("from-frontend", Read(Path.Combine(_t.Run(usb), "block", "sda"), 512, 13));

        // The backend stops: its devices vanish and are detached from the frontend, qubesd's loop devices released.
        await _t.Manager.KillAsync(usb, CancellationToken.None);
        await _devices.BackendStoppedAsync(usb);
        Assert.Empty(_devices.Attachments);
        Assert.False(IsBound(sda.Loop));
        Assert.False(IsBound(cdrom.Loop));
        Assert.Equal(["cdrom", "sda"], lost.Select(l => l.Item1.Device.Port).Order());
        Assert.Equal(["cdrom", "sda"], events.OfType<BackendEvent.DeviceVanished>().Where(e => e.Domain == usb).Select(e => e.Device.Port).Order());
        Assert.Equal("gone\nrc=0\n", await Inside(front, "[ -e /dev/xvdi ] || [ -e /dev/xvdj ] && echo there || echo gone"));
    }

    [Fact]
    public async Task Polling_reports_dom0_loop_devices_appearing_and_vanishing_and_detaches_a_vanished_attached_one()
    {
        var events = new List<BackendEvent>();
        _devices.Changed += e => { lock (events) events.Add(e); };
        await _devices.PollAsync(CancellationToken.None);
        var (_, loop) = Dom0Loop("polled");
        await _devices.PollAsync(CancellationToken.None);
        var appeared = Assert.Single(events.OfType<BackendEvent.DeviceAppeared>(), e => e.Device.Port == loop);
        Assert.Equal("dom0", appeared.Domain);

        var front = _t.Name("poll");
        var pid = await StartFrontend(front);
        await _devices.AttachAsync(front, pid, appeared.Device, new BlockAttachOptions(), CancellationToken.None);
        Process.Start("losetup", ["-d", "/dev/" + loop])!.WaitForExit();
        await _devices.PollAsync(CancellationToken.None);
        Assert.Single(events.OfType<BackendEvent.DeviceVanished>(), e => e.Device.Port == loop);
        Assert.Empty(_devices.Attachments);
        Assert.Equal("gone\nrc=0\n", await Inside(front, "[ -e /dev/xvdi ] && echo there || echo gone"));
    }
}
