using System.Diagnostics;
using QubesActors.Sandbox.Guest;

namespace QubesActors.Sandbox.Storage;

/// <summary>
/// A tiny template root: static busybox and its applets, the directories a sandbox binds over (<c>/rw</c>,
/// <c>/run/qubes</c>, ...), and the init the sandbox runs: it reports ready, runs <c>/rw/boot.sh</c> when the
/// private volume has one, and ends when qubesd writes to its control FIFO; the qrexec services in
/// <c>/etc/qubes-rpc/</c> (<see cref="GuestBundle.InstallServices"/>, as a Qubes template has qubes-core-agent) and
/// Qubes' virtual DNS servers in <c>/etc/resolv.conf</c>. For tests and benchmarks (the default template is a
/// debootstrap tree, issue 6).
/// </summary>
public static class BusyboxTemplate
{
    public const string Init = """
        #!/bin/sh
        echo ready > /run/qubes/ready
        [ -x /rw/boot.sh ] && /rw/boot.sh > /run/qubes/boot.log 2>&1 &
        # The open of the FIFO blocks until qubesd writes; a signal (the boot job ending) interrupts it: open again.
        until read cmd < /run/qubes/control; do :; done
        exit 0
        """;

    /// <summary>Qubes' virtual DNS: a qube asks its netvm at these addresses, which forwards to the real servers.</summary>
    public const string ResolvConf = "nameserver 10.139.1.1\nnameserver 10.139.1.2\n";

    public static void Build(string root, string busybox = "/bin/busybox", string? rpcDirectory = null)
    {
        foreach (var dir in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "dev", "tmp", "rw", "run/qubes", "root" })
            Directory.CreateDirectory(Path.Combine(root, dir));
        File.Copy(busybox, Path.Combine(root, "bin/busybox"), overwrite: true);
        using var list = Process.Start(new ProcessStartInfo(busybox, "--list") { RedirectStandardOutput = true })
                         ?? throw new SandboxException($"{busybox} did not start");
        var applets = list.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        list.WaitForExit();
        foreach (var applet in applets.Where(a => a != "busybox"))
        {
            var link = Path.Combine(root, "bin", applet);
            if (!File.Exists(link))
                File.CreateSymbolicLink(link, "busybox");
        }
        File.WriteAllText(Path.Combine(root, "etc/hostname"), "template\n");
        File.WriteAllText(Path.Combine(root, "etc/resolv.conf"), ResolvConf);
        GuestBundle.InstallServices(root, rpcDirectory);
        var init = Path.Combine(root, "sbin/qubes-init");
        File.WriteAllText(init, Init.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(init, (UnixFileMode)Convert.ToInt32("755", 8));
    }
}
