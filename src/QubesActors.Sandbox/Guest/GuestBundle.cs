namespace QubesActors.Sandbox.Guest;

/// <summary>
/// Where the guest bundle lies (built by QubesActors.Sandbox.csproj into <c>guest/</c> beside the assemblies):
/// <c>bin/</c> is bound read-only into every sandbox at <c>/run/qubes/bin</c>; <c>libexec/</c> holds host-side
/// helpers; <c>qubes-rpc/</c> the services templates get in <c>/etc/qubes-rpc/</c> (docs/qrexec.md).
/// </summary>
public static class GuestBundle
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "guest");

    public static string BinDirectory => Path.Combine(Root, "bin");

    public static string RpcDirectory => Path.Combine(Root, "qubes-rpc");

    /// <summary>The helper nsenter runs inside a target to drop privileges and start the service.</summary>
    public static string ServiceHelper => Path.Combine(Root, "libexec", "qrexec-service-exec");

    /// <summary>Where the bundle's <c>bin/</c> appears inside a sandbox (it is on the sandbox's PATH).</summary>
    public const string BinInside = "/run/qubes/bin";

    /// <summary>
    /// Installs the qrexec services (qubes.VMShell, qubes.VMExec, qubes.Filecopy, qubes.OpenInVM, qubes.GetDate)
    /// into <c>etc/qubes-rpc/</c> of a template root, as Qubes templates have them from qubes-core-agent. Services
    /// of the same name already there are replaced; others are kept.
    /// </summary>
    public static void InstallServices(string templateRoot, string? rpcDirectory = null)
    {
        var source = rpcDirectory ?? RpcDirectory;
        if (!Directory.Exists(source))
            throw new SandboxException($"the qrexec services are missing ({source}): build QubesActors.Sandbox (it compiles the guest bundle)");
        var target = Path.Combine(templateRoot, "etc", "qubes-rpc");
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source))
        {
            var dest = Path.Combine(target, Path.GetFileName(file));
            File.Copy(file, dest, overwrite: true);
            if (Path.GetFileName(file) == "qubes.VMShell" && BashOf(templateRoot) is { } bash && File.ReadAllText(file) is var script
                && script.StartsWith(ShShebang, StringComparison.Ordinal))
                File.WriteAllText(dest, $"#!{bash} -s" + script[ShShebang.Length..]);
            File.SetUnixFileMode(dest, (UnixFileMode)Convert.ToInt32("755", 8));
        }
    }

    private const string ShShebang = "#!/bin/sh -s";

    /// <summary>
    /// Where the template has bash, as the qube sees it: <c>/usr/bin/bash</c>, or <c>/bin/bash</c> when <c>bin</c>
    /// is a directory of its own (never looked up through a link, which would be resolved on the host); else null.
    /// </summary>
    private static string? BashOf(string templateRoot) =>
        File.Exists(Path.Combine(templateRoot, "usr", "bin", "bash")) ? "/usr/bin/bash"
        : new DirectoryInfo(Path.Combine(templateRoot, "bin")) is { Exists: true, LinkTarget: null } && File.Exists(Path.Combine(templateRoot, "bin", "bash")) ? "/bin/bash"
        : null;
}
