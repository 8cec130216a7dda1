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
    /// <summary>The init every template carries (<see cref="QubesInit.Script"/>).</summary>
    public const string Init = QubesInit.Script;

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
        File.WriteAllText(Path.Combine(root, "etc/resolv.conf"), Network.VirtualDns.ResolvConf);
        GuestBundle.InstallServices(root, rpcDirectory);
        QubesInit.Install(root);
    }
}
