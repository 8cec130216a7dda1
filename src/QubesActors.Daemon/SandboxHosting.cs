using System.Net;
using System.Runtime.Versioning;
using Akka.Configuration;
using QubesActors.Sandbox;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Guest;
using QubesActors.Sandbox.Network;
using QubesActors.Sandbox.Storage;

namespace QubesActors.Daemon;

/// <summary>
/// qubesd.backend: <c>auto</c> picks the sandbox backend on Linux as root with bubblewrap installed (what the issue
/// asks of a real machine) and the simulated one elsewhere; <c>sandbox</c> insists and fails with the reason.
/// </summary>
public static class SandboxHosting
{
    public const string Bwrap = "/usr/bin/bwrap";

    /// <summary>Why this machine cannot run sandboxes, or null when it can.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux())
            return "the sandbox backend runs on Linux only";
        if (!SandboxManager.IsRoot)
            return "the sandbox backend needs root (mounts, cgroups, network namespaces)";
        if (!File.Exists(Bwrap))
            return $"the sandbox backend needs bubblewrap ({Bwrap}; Debian package bubblewrap)";
        return null;
    }

    public static string Resolve(string configured) => configured switch
    {
        "auto" => Unavailable() is null ? "sandbox" : "simulated",
        _ => configured,
    };

    /// <summary>The backend from qubesd.sandbox.*; re-adopts the sandboxes a previous qubesd left running.</summary>
    [SupportedOSPlatform("linux")]
    public static async Task<SandboxBackend> CreateAsync(DaemonSettings settings, CancellationToken ct)
    {
        if (Unavailable() is { } reason)
            throw new ConfigurationException(reason);
        var config = settings.Config;
        var storage = config.GetString("qubesd.sandbox.storage", "") is { Length: > 0 } s ? Path.GetFullPath(s) : Path.Combine(settings.StateDir, "sandbox");
        Directory.CreateDirectory(storage);
        var manager = new SandboxManager(storage, CgroupLayout.Detect(parent: config.GetString("qubesd.sandbox.cgroup-parent", "qubes-actors")), config.GetTimeSpan("qubesd.sandbox.ready-timeout", TimeSpan.FromSeconds(30)));
        var naming = new NetworkNaming(config.GetString("qubesd.sandbox.network-prefix", NetworkNaming.DefaultPrefix));
        var network = new SandboxNetwork(new LinuxNetwork(), naming, storage, Uplink(config));
        var backend = new SandboxBackend(manager, network, Templates(config), settings.SimulatedBackendOptions().Devices);
        await backend.AdoptAsync(ct).ConfigureAwait(false);
        backend.StartDevicePolling(config.GetTimeSpan("qubesd.sandbox.device-poll-interval", TimeSpan.FromSeconds(1)));
        return backend;
    }

    /// <summary>qrexec on this backend: dom0's socket is qubesd.qrexec.dom0-socket, else &lt;state-dir&gt;/qrexec.sock.</summary>
    [SupportedOSPlatform("linux")]
    public static Qrexec.QrexecHosting Qrexec(DaemonSettings settings, SandboxBackend backend) => new(backend.Manager,
        settings.Config.GetString("qubesd.qrexec.dom0-socket", "") is { Length: > 0 } path ? Path.GetFullPath(path) : Path.Combine(settings.StateDir, "qrexec.sock"),
        settings.Config.GetTimeSpan("qubesd.qrexec.route-timeout", TimeSpan.FromMinutes(2)));

    [SupportedOSPlatform("linux")]
    public static UplinkSettings? Uplink(Config config)
    {
        var ns = config.GetString("qubesd.sandbox.uplink.namespace", "");
        if (ns.Length == 0)
            return null;
        try
        {
            return new UplinkSettings(ns,
                IPAddress.Parse(config.GetString("qubesd.sandbox.uplink.address")),
                IPAddress.Parse(config.GetString("qubesd.sandbox.uplink.netvm-address")),
                config.GetInt("qubesd.sandbox.uplink.prefix", 24),
                [.. (config.GetStringList("qubesd.sandbox.uplink.dns") ?? []).Select(IPAddress.Parse)]);
        }
        catch (FormatException e)
        {
            throw new ConfigurationException($"qubesd.sandbox.uplink: {e.Message}");
        }
    }

    [SupportedOSPlatform("linux")]
    public static TemplateProvisioner Templates(Config config) => config.GetString("qubesd.sandbox.template-source", "debootstrap") switch
    {
        "busybox" => TemplateProvisioner.Busybox(),
        "debootstrap" => new TemplateProvisioner(async (root, ct) =>
        {
            var mirror = config.GetString("qubesd.sandbox.debootstrap-mirror", "");
            await DebootstrapTemplate.EnsureAsync(root, config.GetString("qubesd.sandbox.debootstrap-suite", "bookworm"),
                mirror.Length == 0 ? null : mirror, hostname: Path.GetFileName(Path.GetDirectoryName(root)), ct: ct).ConfigureAwait(false);
            // As a Qubes template has qubes-core-agent installed: the qrexec services in /etc/qubes-rpc.
            GuestBundle.InstallServices(root);
        }),
        var other => throw new ConfigurationException($"qubesd.sandbox.template-source must be debootstrap or busybox, not '{other}'"),
    };
}
