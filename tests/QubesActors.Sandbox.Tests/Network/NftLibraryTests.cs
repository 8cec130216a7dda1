using System.Diagnostics;
using QubesActors.Sandbox.Network;
using Xunit;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// nftables scripts applied through libnftables in this process (<see cref="NftLibrary"/>) and through the nft program
/// (the fallback), as root in namespaces of this run's own prefix. What a script did is read back with the nft program
/// in that namespace, independent of the library.
/// </summary>
[Collection(RealNetworkCollection.Name)]
public sealed class NftLibraryTests : IAsyncLifetime
{
    private readonly string _prefix = $"qt{Guid.NewGuid().ToString("N")[..6]}-";
    private readonly LinuxNetwork _shell = new();
    private readonly List<string> _namespaces = [];

    public Task InitializeAsync()
    {
        RequireRootAndTools();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var ns in _namespaces)
            await _shell.DeleteNamespaceAsync(ns);
    }

    private async Task<string> NamespaceAsync(string name)
    {
        var ns = _prefix + name;
        _namespaces.Add(ns);
        await _shell.CreateNamespaceAsync(ns);
        return ns;
    }

    /// <summary>A table name no other test or run uses.</summary>
    private static string Table() => "qt_" + Guid.NewGuid().ToString("N")[..10];

    private static Task<string> NftProgramListAsync(string ns) => RunOkAsync("ip", "netns", "exec", ns, "nft", "list", "ruleset");

    [Fact]
    public void The_library_is_there_where_nft_is()
    {
        // Else every call silently takes the slower process path: installing nftables installs libnftables1.
        Assert.True(NftLibrary.Available, $"{NftLibrary.Name} could not be loaded (apt-get install libnftables1)");
    }

    [Fact]
    public async Task A_script_lands_in_its_namespace_only()
    {
        var a = await NamespaceAsync("a");
        var b = await NamespaceAsync("b");
        var table = Table();

        await _shell.NftAsync(a, $"add table inet {table}\nadd chain inet {table} c\nadd rule inet {table} c tcp dport 4711 accept\n");

        var inA = await NftProgramListAsync(a);
        Assert.Contains($"table inet {table}", inA, StringComparison.Ordinal);
        Assert.Contains("tcp dport 4711 accept", inA, StringComparison.Ordinal);
        Assert.DoesNotContain(table, await NftProgramListAsync(b), StringComparison.Ordinal);
        Assert.DoesNotContain(table, await RunOkAsync("nft", "list", "ruleset"), StringComparison.Ordinal); // the host's
        // The library's listing is the program's, byte for byte, and also per namespace.
        Assert.Equal(inA, await _shell.ListRulesetAsync(a));
        Assert.DoesNotContain(table, await _shell.ListRulesetAsync(b), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_script_changes_nothing_and_carries_nft_error()
    {
        var ns = await NamespaceAsync("err");
        var table = Table();
        await _shell.NftAsync(ns, $"add table inet {table}\n");
        var before = await NftProgramListAsync(ns);

        // Valid additions, then a delete the kernel refuses: the whole transaction is refused.
        var script = $"add table inet {table}_new\nadd chain inet {table} c\ndelete table inet {table}_missing\n";
        var refused = await Assert.ThrowsAsync<NetworkCommandException>(() => _shell.NftAsync(ns, script));
        Assert.Contains($"`nft -f -` in network namespace {ns} failed (libnftables", refused.Message, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"delete table inet {table}_missing", refused.Message, StringComparison.Ordinal); // the script
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("Error:", refused.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await NftProgramListAsync(ns));

        var syntax = await Assert.ThrowsAsync<NetworkCommandException>(() => _shell.NftAsync(ns, $"add table inet {table}_other\nadd tabel inet x\n"));
        Assert.Contains("syntax error", syntax.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await NftProgramListAsync(ns));
    }

    [Fact]
    public async Task Concurrent_calls_each_land_in_their_own_namespace()
    {
        var namespaces = new List<string>();
        for (var i = 0; i < 4; i++)
            namespaces.Add(await NamespaceAsync($"c{i}"));
        var run = Table();

        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() =>
            _shell.NftAsync(namespaces[i % 4], $"add table inet {run}_{i % 4}_{i}\n"))));

        for (var n = 0; n < 4; n++)
        {
            var listed = await NftProgramListAsync(namespaces[n]);
            var tables = listed.Split('\n').Where(l => l.StartsWith($"table inet {run}_", StringComparison.Ordinal)).ToList();
            Assert.Equal(10, tables.Count);
            Assert.All(tables, t => Assert.StartsWith($"table inet {run}_{n}_", t, StringComparison.Ordinal));
        }
    }

    /// <summary>The netlink sockets of user space in a namespace (/proc/net/netlink read inside it), protocol 12 (netfilter).</summary>
    private static async Task<List<string>> NetfilterSocketsAsync(string ns) =>
        (await RunOkAsync("ip", "netns", "exec", ns, "cat", "/proc/net/netlink")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(s => s[1] == "12" && s[2] != "0") // port id 0: the kernel's own
            .Select(s => string.Join(' ', s)).ToList();

    [Fact]
    public async Task No_netlink_socket_is_left_open_in_the_namespace()
    {
        var ns = await NamespaceAsync("sock");
        await _shell.NftAsync(ns, $"add table inet {Table()}\n");
        await _shell.ListRulesetAsync(ns);
        Assert.Empty(await NetfilterSocketsAsync(ns));
    }

    [Fact]
    public async Task Programs_started_meanwhile_do_not_inherit_the_librarys_socket()
    {
        // libnftables opens its socket without close-on-exec: a child forked by another thread during a call would
        // keep it (and the namespace) as long as it runs. Children that sleep past the calls show it.
        var ns = await NamespaceAsync("fork");
        var table = Table();
        var children = new List<Process>();
        using var stop = new CancellationTokenSource();
        var spawner = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
                children.Add(Process.Start(new ProcessStartInfo("sleep", "10") { UseShellExecute = false })!);
        });
        try
        {
            for (var i = 0; i < 50; i++)
                await _shell.NftAsync(ns, $"add table inet {table}_{i}\n");
            await stop.CancelAsync();
            await spawner;
            Assert.True(children.Count > 10, $"only {children.Count} programs started during the calls");
            Assert.Empty(await NetfilterSocketsAsync(ns));
        }
        finally
        {
            await stop.CancelAsync();
            await spawner;
            foreach (var child in children)
            {
                child.Kill();
                child.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_process_with_more_than_1024_descriptors_open_still_applies_scripts()
    {
        // qubesd with a few hundred sandboxes holds over 1,024 descriptors (channels, pipes of every sandbox's
        // launcher). libnftables waits on its socket with select(), and glibc aborts the whole process on a descriptor
        // select() cannot hold: the library's thread gets a descriptor table of its own with the low numbers free.
        var ns = await NamespaceAsync("fds");
        var table = Table();
        var held = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>();
        try
        {
            // open() gives the lowest free number: once it gives 1,030, every number below is taken.
            do
                held.Add(File.OpenHandle("/dev/null"));
            while (held[^1].DangerousGetHandle() < 1030 && held.Count < 10_000);
            Assert.True(held[^1].DangerousGetHandle() >= 1030, $"the last descriptor is {held[^1].DangerousGetHandle()}");
            for (var i = 0; i < 5; i++)
                await _shell.NftAsync(ns, $"add table inet {table}_{i}\n");
            Assert.Contains($"table inet {table}_4", await _shell.ListRulesetAsync(ns), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var handle in held)
                handle.Dispose();
        }
    }

    [Fact]
    public async Task The_nft_program_still_does_it_when_forced()
    {
        var shell = new LinuxNetwork { ForceNftProcess = true };
        var ns = await NamespaceAsync("proc");
        var other = await NamespaceAsync("proc2");
        var table = Table();

        await shell.NftAsync(ns, $"add table inet {table}\n");
        Assert.Contains($"table inet {table}", await NftProgramListAsync(ns), StringComparison.Ordinal);
        Assert.DoesNotContain(table, await NftProgramListAsync(other), StringComparison.Ordinal);
        Assert.Equal(await NftProgramListAsync(ns), await shell.ListRulesetAsync(ns));

        var before = await NftProgramListAsync(ns);
        var error = await Assert.ThrowsAsync<NetworkCommandException>(() => shell.NftAsync(ns, $"add table inet {table}_new\ndelete table inet {table}_missing\n"));
        // The program's failure, not the library's: its command line and exit code.
        Assert.Contains("nft -f -` exited with 1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("libnftables", error.Message, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", error.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await NftProgramListAsync(ns));
    }
}
