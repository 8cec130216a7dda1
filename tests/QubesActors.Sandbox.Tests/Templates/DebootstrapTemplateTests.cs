using QubesActors.Sandbox.Storage;
using Xunit;

namespace QubesActors.Sandbox.Tests.Templates;

/// <summary>
/// The default template's build logic with a fake debootstrap (a script that makes a small tree and logs its
/// arguments): marker, atomic rename, leftovers of a crash, the parts a qube needs, the mirror apt uses. The real build
/// takes minutes and is tools/build-default-template.sh.
/// </summary>
public sealed class DebootstrapTemplateTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "qa-tpl-" + Guid.NewGuid().ToString("N")[..8]);
    private string Root => Path.Combine(_dir, "templates", "debian-12-minimal", "root");
    private string Log => Path.Combine(_dir, "debootstrap.log");
    private string Outside => Path.Combine(_dir, "outside-resolv.conf");

    public DebootstrapTemplateTests()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Outside, "host's own\n");
        Script("ok", $"""
            echo "$@" >> {Log}
            t="$3"
            mkdir -p "$t/bin" "$t/etc" "$t/var/cache/apt/archives"
            echo '#!/bin/sh' > "$t/bin/bash"
            echo bash_5.2_amd64 > "$t/var/cache/apt/archives/bash_5.2_amd64.deb"
            ln -s {Outside} "$t/etc/resolv.conf"
            echo host > "$t/etc/hostname"
            """);
        Script("fail", $"""
            echo "$@" >> {Log}
            mkdir -p "$3/usr/bin"; echo half > "$3/usr/bin/half"
            echo "I: Retrieving InRelease"
            echo "E: Failed getting release file http://mirror.invalid/dists/bookworm/Release" >&2
            exit 1
            """);
    }

    private string Script(string name, string body)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32("755", 8));
        return path;
    }

    private string[] Siblings() => [.. Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(Root)!).Select(Path.GetFileName)!];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_template_is_built_once_renamed_into_place_complete_and_has_what_a_qube_needs()
    {
        Assert.True(await DebootstrapTemplate.EnsureAsync(Root, mirror: "http://mirror.example/debian", debootstrap: Path.Combine(_dir, "ok")));
        var args = File.ReadAllLines(Log).Single().Split(' ');
        Assert.Equal(["--variant=minbase", "bookworm"], args[..2]);
        Assert.Equal("http://mirror.example/debian", args[3]);
        // debootstrap wrote into a sibling, not the root itself.
        Assert.StartsWith(Root + ".building-", args[2]);
        Assert.Equal(["root"], Siblings());

        Assert.True(DebootstrapTemplate.IsComplete(Root));
        Assert.Equal(QubesInit.Script.Replace("\r\n", "\n") + "\n", File.ReadAllText(Path.Combine(Root, "sbin/qubes-init")));
        Assert.True(File.GetUnixFileMode(Path.Combine(Root, "sbin/qubes-init")).HasFlag(UnixFileMode.UserExecute));
        Assert.True(Directory.Exists(Path.Combine(Root, "rw")) && Directory.Exists(Path.Combine(Root, "run/qubes")));
        Assert.Equal("nameserver 10.139.1.1\nnameserver 10.139.1.2\n", File.ReadAllText(Path.Combine(Root, "etc/resolv.conf")));
        Assert.Null(new FileInfo(Path.Combine(Root, "etc/resolv.conf")).LinkTarget);
        Assert.Equal("host's own\n", File.ReadAllText(Outside)); // the symlink was replaced, not written through
        Assert.Equal("debian-12-minimal\n", File.ReadAllText(Path.Combine(Root, "etc/hostname")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Root, "var/cache/apt/archives")));

        // Complete: nothing runs again.
        Assert.False(await DebootstrapTemplate.EnsureAsync(Root, mirror: "http://mirror.example/debian", debootstrap: Path.Combine(_dir, "fail")));
        Assert.Single(File.ReadAllLines(Log));
    }

    [Fact]
    public async Task A_failed_build_leaves_no_template_and_no_half_tree_and_says_why()
    {
        var e = await Assert.ThrowsAsync<SandboxException>(() => DebootstrapTemplate.EnsureAsync(Root, mirror: "http://mirror.invalid/debian", debootstrap: Path.Combine(_dir, "fail")));
        Assert.Contains("Failed getting release file", e.Message);
        Assert.Empty(Siblings());
        Assert.False(Directory.Exists(Root));
    }

    [Fact]
    public async Task What_a_crash_left_is_removed_and_the_build_starts_again()
    {
        // A build killed half way, and a root that never got its marker.
        Directory.CreateDirectory(Path.Combine(Root + ".building-dead0000", "usr/bin"));
        Directory.CreateDirectory(Path.Combine(Root, "etc"));
        File.WriteAllText(Path.Combine(Root, "etc/half"), "");
        Assert.False(DebootstrapTemplate.IsComplete(Root));

        Assert.True(await DebootstrapTemplate.EnsureAsync(Root, mirror: "http://m/debian", debootstrap: Path.Combine(_dir, "ok")));
        Assert.Equal(["root"], Siblings());
        Assert.False(File.Exists(Path.Combine(Root, "etc/half")));
        Assert.True(DebootstrapTemplate.IsComplete(Root));
    }

    [Fact]
    public async Task Without_a_mirror_it_takes_the_one_apt_uses_for_the_suite()
    {
        var apt = Path.Combine(_dir, "apt");
        Directory.CreateDirectory(Path.Combine(apt, "sources.list.d"));
        File.WriteAllText(Path.Combine(apt, "sources.list.d", "debian.sources"), DebianSources);
        await DebootstrapTemplate.EnsureAsync(Root, debootstrap: Path.Combine(_dir, "ok"), aptDirectory: apt);
        Assert.Equal("http://deb.example.org/debian", File.ReadAllLines(Log).Single().Split(' ')[3]);
    }

    private const string DebianSources = """
        Types: deb
        URIs: http://security.example.org/debian-security
        Suites: bookworm-security
        Components: main

        Types: deb-src
        URIs: http://src.example.org/debian
        Suites: bookworm
        Components: main

        Types: deb
        # http://snapshot.debian.org/archive/debian/20250520T000000Z
        URIs: http://deb.example.org/debian
        Suites: bookworm bookworm-updates
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        """;

    [Fact]
    public void The_mirror_is_read_from_deb822_and_one_line_sources_and_disabled_or_other_suites_are_skipped()
    {
        Assert.Equal("http://deb.example.org/debian", DebootstrapTemplate.MirrorFromAptSources([("debian.sources", DebianSources)], "bookworm"));
        Assert.Null(DebootstrapTemplate.MirrorFromAptSources([("debian.sources", DebianSources)], "trixie"));
        Assert.Null(DebootstrapTemplate.MirrorFromAptSources([("d.sources", "Enabled: no\nTypes: deb\nURIs: http://off/debian\nSuites: bookworm\n")], "bookworm"));
        Assert.Equal("http://one/debian", DebootstrapTemplate.MirrorFromAptSources([("sources.list", """
            # deb http://commented/debian bookworm main
            deb-src http://src/debian bookworm main
            deb http://upd/debian bookworm-updates main
            deb [arch=amd64 signed-by=/k.gpg] http://one/debian bookworm main contrib
            """)], "bookworm"));
        Assert.Null(DebootstrapTemplate.MirrorFromAptSources([], "bookworm"));
    }

    [Fact]
    public void The_shared_init_is_the_busybox_templates_init() => Assert.Equal(BusyboxTemplate.Init, QubesInit.Script);
}
