using System.Diagnostics;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Storage;

namespace QubesActors.Sandbox.Tests.Sandboxes;

/// <summary>
/// A storage root with a tiny template: static busybox and its applets, the directories a sandbox binds over, and an
/// init that reports ready, runs <c>/rw/boot.sh</c> when the private volume has one (how a test runs something
/// inside), and ends when asked through its control FIFO. Sandboxes here use their own cgroup parent and names, and
/// everything is torn down at dispose.
/// </summary>
public sealed class TestStorage : IAsyncDisposable
{
    public const string Template = "tpl";
    public string Storage { get; } = Path.Combine(Path.GetTempPath(), "qa-sbx-" + Guid.NewGuid().ToString("N")[..8]);
    public string Prefix { get; } = "qa" + Guid.NewGuid().ToString("N")[..6];
    public CgroupLayout Cgroups { get; } = CgroupLayout.Detect(parent: "qubes-actors-test");
    public SandboxManager Manager { get; }

    public TestStorage()
    {
        if (!SandboxManager.IsRoot)
            throw new InvalidOperationException("the sandbox tests need root (mounts, cgroups, namespaces); CI runs them as root");
        if (!File.Exists("/usr/bin/bwrap") || !File.Exists("/bin/busybox"))
            throw new InvalidOperationException("the sandbox tests need bubblewrap and busybox-static (tools/ci/install.sh installs them)");
        BuildTemplate(SandboxVolumes.TemplateRoot(Storage, Template));
        Manager = new SandboxManager(Storage, Cgroups);
    }

    public string Name(string suffix) => $"{Prefix}-{suffix}";

    public string TemplateRoot => SandboxVolumes.TemplateRoot(Storage, Template);

    public static void BuildTemplate(string root) => BusyboxTemplate.Build(root);

    /// <summary>Puts a script the sandbox's init runs at boot into its private volume.</summary>
    public void Boot(string name, string script)
    {
        var file = Path.Combine(Storage, "qubes", name, "private", "boot.sh");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "#!/bin/sh\n" + script.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("755", 8));
    }

    public string Run(string name) => Path.Combine(Storage, "qubes", name, "run");

    public async ValueTask DisposeAsync()
    {
        foreach (var name in Manager.RunningNames)
        {
            try
            {
                await Manager.KillAsync(name, CancellationToken.None);
            }
            catch (Exception e) when (e is SandboxException or TimeoutException)
            {
            }
        }
        // Nothing of the test may stay mounted before its files go.
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo").Reverse())
            if (line.Split(' ') is { Length: > 4 } f && f[4].StartsWith(Storage, StringComparison.Ordinal))
                Process.Start("umount", ["-l", f[4]])!.WaitForExit();
        if (Directory.Exists(Storage))
            Directory.Delete(Storage, recursive: true);
    }
}
