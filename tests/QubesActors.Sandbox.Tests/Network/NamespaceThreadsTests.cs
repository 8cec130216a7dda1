using System.Diagnostics;
using QubesActors.Sandbox.Network;
using Xunit;
using static QubesActors.Sandbox.Tests.Network.TestNetwork;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// Threads that join a qube's network namespace (to start a program in it, to run nft there) must leave nothing of
/// this process behind in it: a thread the runtime creates inherits its creator's namespaces, so a pool thread born
/// from one would run later work — a DNS look-up for a firewall rule, a program start — inside a qube's network.
/// (The case found: the runtime's SIGCHLD thread, started by the process's first process start, which in the bench
/// was inside a namespace; the pool threads it woke lived there too. This test host starts that thread at start-up,
/// so here the test guards the rule for every other thread; the bench, a fresh process, showed the fix.)
/// </summary>
[Collection(RealNetworkCollection.Name)]
public sealed class NamespaceThreadsTests
{
    [Fact]
    public async Task No_thread_of_the_process_stays_in_a_namespace_it_joined_to_start_programs_and_run_nft()
    {
        RequireRootAndTools();
        var shell = new LinuxNetwork();
        var ns = $"qt{Guid.NewGuid().ToString("N")[..6]}-threads";
        await shell.CreateNamespaceAsync(ns);
        try
        {
            var path = Path.Combine(NetNamespaces.Directory, ns);
            // As qubesd does it, many at once: nft through the library (its result handed back from the namespace's
            // thread), programs started inside.
            var jobs = Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
            {
                await shell.NftAsync(ns, $"add table inet qt_threads_{i}\n");
                using var started = NetNamespaces.In(path, () => Process.Start(new ProcessStartInfo("/bin/true") { RedirectStandardOutput = true }))!;
                await started.StandardOutput.ReadToEndAsync();
                await started.WaitForExitAsync();
            }));
            await Task.WhenAll(jobs);

            var host = new FileInfo("/proc/self/ns/net").LinkTarget;
            var astray = Directory.GetDirectories("/proc/self/task")
                .Select(task => (Task: Path.GetFileName(task), Net: TryNetOf(task)))
                .Where(t => t.Net is not null && t.Net != host)
                .Select(t => (t.Task, t.Net, Comm: TryRead(Path.Combine("/proc/self/task", t.Task, "comm"))))
                // The joiners themselves ("netns", ending with their job) may be at work for another test right now.
                .Where(t => t.Comm != "netns")
                .Select(t => $"thread {t.Task} ({t.Comm}) in {t.Net}")
                .ToList();
            Assert.Empty(astray);
        }
        finally
        {
            await shell.DeleteNamespaceAsync(ns);
        }
    }

    private static string? TryNetOf(string task)
    {
        try
        {
            return new FileInfo(Path.Combine(task, "ns", "net")).LinkTarget;
        }
        catch (IOException)
        {
            return null; // the thread ended meanwhile
        }
    }

    private static string TryRead(string file)
    {
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
