namespace QubesActors.Sandbox.Launch;

/// <summary>
/// The command line that starts one sandbox (pure). A shell first writes its own pid into the sandbox's cgroup(s),
/// so bubblewrap and everything it starts are accounted and frozen together, then becomes bubblewrap: new pid, mount,
/// uts and ipc namespaces; the network namespace of its netvm link (<paramref name="NetNamespace"/>: the launcher is
/// started in it, see <see cref="SandboxManager"/>; bubblewrap keeps it) or a new empty one (a qube without netvm has no network at all, only lo); its root, <c>/rw</c>
/// and the control directory bound in, the guest bundle (<paramref name="GuestBin"/>: qrexec-client-vm, qvm-copy, ...)
/// read-only at <c>/run/qubes/bin</c> and on PATH; no capabilities (<c>--cap-drop ALL</c>; bubblewrap always sets
/// no_new_privs); its own session. No <c>--die-with-parent</c>: sandboxes outlive qubesd and are re-adopted.
/// </summary>
public sealed record BwrapCommand(
    string Name,
    string Root,
    bool RootReadOnly,
    string Private,
    string Run,
    IReadOnlyList<string> CgroupProcsFiles,
    string? NetNamespace,
    string? GuestBin = null,
    string Init = "/sbin/qubes-init",
    string Bwrap = "/usr/bin/bwrap",
    string Shell = "/bin/sh")
{
    /// <summary>The mount point of the control directory inside the sandbox.</summary>
    public const string RunInside = "/run/qubes";

    /// <summary>The mount point of the guest bundle inside the sandbox.</summary>
    public const string BinInside = "/run/qubes/bin";

    public IReadOnlyList<string> Arguments()
    {
        var args = new List<string>
        {
            "-c",
            // $1.. are the cgroup files up to "--"; then the command. Written before exec: nothing escapes accounting.
            "while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 125; shift; done; shift; exec \"$@\"",
            "qubes-sandbox-launch",
        };
        args.AddRange(CgroupProcsFiles);
        args.Add("--");
        args.AddRange([Bwrap, "--unshare-pid", "--unshare-uts", "--unshare-ipc"]);
        if (NetNamespace is null)
            args.Add("--unshare-net");
        args.AddRange(["--new-session", "--cap-drop", "ALL", "--hostname", Name]);
        args.AddRange([RootReadOnly ? "--ro-bind" : "--bind", Root, "/"]);
        args.AddRange(["--bind", Private, "/rw", "--bind", Run, RunInside]);
        // After the control directory's bind, so it lands inside it; read-only: the qube cannot change its tools.
        if (GuestBin is not null)
            args.AddRange(["--ro-bind", GuestBin, BinInside]);
        args.AddRange(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        args.AddRange(["--clearenv", "--setenv", "PATH", GuestBin is null ? "/usr/sbin:/usr/bin:/sbin:/bin" : $"/usr/sbin:/usr/bin:/sbin:/bin:{BinInside}", "--setenv", "HOME", "/rw/home", "--setenv", "QUBES_NAME", Name]);
        args.Add(Init);
        return args;
    }
}
