namespace QubesActors.Sandbox.Launch;

/// <summary>
/// The command line that starts one sandbox (pure). A shell first writes its own pid into the sandbox's cgroup(s),
/// so bubblewrap and everything it starts are accounted and frozen together, then becomes bubblewrap: new pid, mount,
/// uts and ipc namespaces; the network namespace of its netvm link (<paramref name="NetNamespace"/>, joined with
/// <c>ip netns exec</c>) or a new empty one (a qube without netvm has no network at all, only lo); its root, <c>/rw</c>
/// and the control directory bound in; no capabilities (<c>--cap-drop ALL</c>; bubblewrap always sets
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
    string Init = "/sbin/qubes-init",
    string Bwrap = "/usr/bin/bwrap",
    string Shell = "/bin/sh",
    string Ip = "/usr/sbin/ip")
{
    /// <summary>The mount point of the control directory inside the sandbox.</summary>
    public const string RunInside = "/run/qubes";

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
        if (NetNamespace is not null)
            args.AddRange([Ip, "netns", "exec", NetNamespace]);
        args.AddRange([Bwrap, "--unshare-pid", "--unshare-uts", "--unshare-ipc"]);
        if (NetNamespace is null)
            args.Add("--unshare-net");
        args.AddRange(["--new-session", "--cap-drop", "ALL", "--hostname", Name]);
        args.AddRange([RootReadOnly ? "--ro-bind" : "--bind", Root, "/"]);
        args.AddRange(["--bind", Private, "/rw", "--bind", Run, RunInside]);
        args.AddRange(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        args.AddRange(["--clearenv", "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "HOME", "/rw/home", "--setenv", "QUBES_NAME", Name]);
        args.Add(Init);
        return args;
    }
}
