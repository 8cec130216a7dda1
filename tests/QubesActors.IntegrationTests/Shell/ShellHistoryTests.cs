using QubesActors.Cli.Shell;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ShellHistoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qa-hist-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Default_path_follows_xdg_state_home_then_home()
    {
        Assert.Equal("/x/state/qubesactors/qvm_history", ShellHistory.DefaultPath(v => v == "XDG_STATE_HOME" ? "/x/state" : "/home/u"));
        Assert.Equal("/home/u/.local/state/qubesactors/qvm_history", ShellHistory.DefaultPath(v => v == "HOME" ? "/home/u" : null));
        // A relative XDG_STATE_HOME is invalid per the spec.
        Assert.Equal("/home/u/.local/state/qubesactors/qvm_history", ShellHistory.DefaultPath(v => v == "HOME" ? "/home/u" : "rel"));
    }

    [Fact]
    public void Lines_are_appended_to_an_owner_only_file_in_a_new_directory()
    {
        var path = Path.Combine(_dir, "deep", "qvm_history");
        var history = ShellHistory.Load(path);
        history.Add("ls");
        history.Add("   ");
        history.Add("ls");
        history.Add("start work");
        Assert.Equal(["ls", "start work"], File.ReadAllLines(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(["ls", "start work"], ShellHistory.Load(path).Lines);
    }

    [Fact]
    public void An_existing_file_is_made_owner_only()
    {
        var path = Path.Combine(_dir, "h");
        File.WriteAllLines(path, ["ls"]);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        Assert.Equal(["ls"], ShellHistory.Load(path).Lines);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void The_file_keeps_the_newest_thousand_lines()
    {
        var path = Path.Combine(_dir, "h");
        File.WriteAllLines(path, Enumerable.Range(0, 1005).Select(i => $"line {i}"));
        var history = ShellHistory.Load(path);
        Assert.Equal(ShellHistory.Limit, history.Lines.Count);
        Assert.Equal("line 5", history.Lines[0]);
        Assert.Equal(ShellHistory.Limit, File.ReadAllLines(path).Length);
        history.Add("newest");
        var lines = File.ReadAllLines(path);
        Assert.Equal((ShellHistory.Limit, "line 6", "newest"), (lines.Length, lines[0], lines[^1]));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void A_pasted_multi_line_entry_is_stored_as_one_line()
    {
        var path = Path.Combine(_dir, "h");
        ShellHistory.Load(path).Add("a\nb");
        Assert.Equal(["a b"], File.ReadAllLines(path));
    }

    [Fact]
    public void In_memory_history_writes_nothing()
    {
        var history = ShellHistory.InMemory();
        history.Add("ls");
        Assert.Equal(["ls"], history.Lines);
        Assert.Null(history.Path);
    }
}
