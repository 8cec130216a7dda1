using QubesActors.Runtime.Backend;
using QubesActors.Sandbox.Devices;
using Xunit;

namespace QubesActors.Sandbox.Tests.Devices;

/// <summary>The pure rules of block devices: frontend names, options, ports, images, diffs, sysfs parsing (no root).</summary>
public sealed class BlockRulesTests
{
    [Fact]
    public void Frontend_names_start_at_xvdi_take_the_first_free_one_and_honour_a_free_requested_one()
    {
        Assert.Equal("xvdi", BlockRules.PickFrontendName([]));
        Assert.Equal("xvdk", BlockRules.PickFrontendName(["xvdi", "xvdj"]));
        Assert.Equal("xvdj", BlockRules.PickFrontendName(["xvdi", "xvdk"]));
        Assert.Equal("xvdm", BlockRules.PickFrontendName(["xvdi"], "xvdm"));
        Assert.Equal("QubesException", Assert.Throws<BlockDeviceException>(() => BlockRules.PickFrontendName(["xvdm"], "xvdm")).QubesError);
        // The qube's own volumes and anything that is not a name are refused.
        foreach (var bad in new[] { "xvda", "xvdb", "sda", "../xvdi", "xvdi/", "" })
            Assert.Equal("ProtocolError", Assert.Throws<BlockDeviceException>(() => BlockRules.PickFrontendName([], bad)).QubesError);
        var all = Enumerable.Range('i', 18).Select(c => "xvd" + (char)c).ToList();
        Assert.Equal("xvdz", all[^1]);
        Assert.Throws<BlockDeviceException>(() => BlockRules.PickFrontendName(all));
    }

    [Fact]
    public void Attach_options_are_Qubes_ones_and_anything_else_is_a_protocol_error()
    {
        Assert.Equal(new BlockAttachOptions(), BlockAttachOptions.Parse(new Dictionary<string, string>()));
        Assert.True(BlockAttachOptions.Parse(new Dictionary<string, string> { ["read-only"] = "yes" }).ReadOnly);
        Assert.True(BlockAttachOptions.Parse(new Dictionary<string, string> { ["read-only"] = "True" }).ReadOnly);
        Assert.False(BlockAttachOptions.Parse(new Dictionary<string, string> { ["read-only"] = "no" }).ReadOnly);
        Assert.True(BlockAttachOptions.Parse(new Dictionary<string, string> { ["devtype"] = "cdrom" }).ReadOnly);
        Assert.Equal("xvdk", BlockAttachOptions.Parse(new Dictionary<string, string> { ["frontend-dev"] = "xvdk" }).FrontendDev);
        foreach (var (k, v) in new[] { ("read-only", "maybe"), ("frontend-dev", "sda"), ("devtype", "floppy"), ("mode", "rw") })
            Assert.Equal("ProtocolError", Assert.Throws<BlockDeviceException>(() => BlockAttachOptions.Parse(new Dictionary<string, string> { [k] = v })).QubesError);
    }

    [Theory]
    [InlineData("sda", true)]
    [InlineData("sda1", true)]
    [InlineData("usb-stick_2", true)]
    [InlineData("Sda", false)]
    [InlineData("..", false)]
    [InlineData("../etc", false)]
    [InlineData(".sda", false)]
    [InlineData("sda.img", false)]
    [InlineData("sys-usb:sda", false)]
    [InlineData("a+b", false)]
    [InlineData("1sda", false)]
    [InlineData("", false)]
    [InlineData("sda\n", false)] // '$' would let a trailing newline through
    [InlineData("loop0\n", false)]
    [InlineData("a123456789012345678901234567890123", false)]
    public void Ports_a_backend_qube_may_expose_are_plain_names(string port, bool valid) => Assert.Equal(valid, BlockRules.IsValidPort(port));

    [Fact]
    public void Images_must_be_non_empty_regular_files_of_whole_sectors_under_the_limit()
    {
        Assert.Null(BlockRules.RefuseImage(true, 1 << 20, 1L << 30));
        Assert.Equal("not a regular file", BlockRules.RefuseImage(false, 1 << 20, 1L << 30));
        Assert.Equal("empty", BlockRules.RefuseImage(true, 0, 1L << 30));
        Assert.Equal("size is not a multiple of 512 bytes", BlockRules.RefuseImage(true, 1000, 1L << 30));
        Assert.NotNull(BlockRules.RefuseImage(true, 1L << 31, 1L << 30));
    }

    [Fact]
    public void Untrusted_text_is_escaped_and_bounded_and_identities_are_safe_in_addresses()
    {
        Assert.Equal("a\\x1bb\\x0a", BlockRules.Printable("a\u001bb\n"));
        Assert.EndsWith("...", BlockRules.Printable(new string('x', 100)));
        Assert.Equal("file-fe01-1234", BlockRules.FileIdentity(0xfe01, 1234));
        Assert.Equal(("4 MiB", "1 GiB", "1536 B"), (BlockRules.Size(4 << 20), BlockRules.Size(1 << 30), BlockRules.Size(1536)));
    }

    [Fact]
    public void A_diff_reports_new_and_gone_devices_and_a_replaced_one_as_both()
    {
        BackendDevice D(string port, string id) => new("block", "dom0", port, id, "");
        var (appeared, vanished) = BlockRules.Diff([D("loop0", "a"), D("loop1", "b")], [D("loop1", "b"), D("loop2", "c")]);
        Assert.Equal(["loop2"], appeared.Select(d => d.Port));
        Assert.Equal(["loop0"], vanished.Select(d => d.Port));
        (appeared, vanished) = BlockRules.Diff([D("loop0", "a")], [D("loop0", "z")]);
        Assert.Equal(["z"], appeared.Select(d => d.DeviceId));
        Assert.Equal(["a"], vanished.Select(d => d.DeviceId));
    }

    [Fact]
    public void Sysfs_lists_only_bound_loop_devices_with_their_numbers_backing_file_and_mode()
    {
        var sys = Path.Combine(Path.GetTempPath(), "qa-sysblock-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            void Loop(string name, string dev, string? backing, string ro = "0", string size = "8192")
            {
                var dir = Path.Combine(sys, name);
                Directory.CreateDirectory(Path.Combine(dir, "loop"));
                File.WriteAllText(Path.Combine(dir, "dev"), dev + "\n");
                File.WriteAllText(Path.Combine(dir, "ro"), ro + "\n");
                File.WriteAllText(Path.Combine(dir, "size"), size + "\n");
                if (backing is not null)
                    File.WriteAllText(Path.Combine(dir, "loop", "backing_file"), backing + "\n");
            }
            Loop("loop10", "7:10", "/var/tmp/b.img", ro: "1");
            Loop("loop2", "7:2", "/var/tmp/a.img");
            Loop("loop3", "7:3", null); // unbound
            Loop("loopy", "7:9", "/x");  // not a loop device name
            Directory.CreateDirectory(Path.Combine(sys, "vda"));
            Assert.Equal([new LoopDevice("loop2", 7, 2, "/var/tmp/a.img", false, 4 << 20), new LoopDevice("loop10", 7, 10, "/var/tmp/b.img", true, 4 << 20)],
                LoopSysfs.Read(sys));
            Assert.Null(LoopSysfs.Get("loop3", sys));
            Assert.True(BlockRules.IsLoopName("loop12"));
            Assert.False(BlockRules.IsLoopName("loop0\n"));
            Assert.False(BlockRules.IsLoopName("loop../x"));
            Assert.Empty(LoopSysfs.Read(Path.Combine(sys, "absent")));
        }
        finally
        {
            Directory.Delete(sys, recursive: true);
        }
    }
}
