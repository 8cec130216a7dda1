using System.Diagnostics;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary><c>qubes-audit log --follow</c> beside a running qubesd.</summary>
public sealed class AuditFollowTests(Xunit.Abstractions.ITestOutputHelper log)
{
    [Fact]
    public async Task Follow_prints_new_events_as_they_are_persisted_and_ends_cleanly_on_cancel()
    {
        var stateDir = Path.Combine(Path.GetTempPath(), "qa-audit-follow-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(stateDir);
        try
        {
            using var daemon = await QubesdProcess.StartAsync(stateDir);
            var output = new LockedWriter();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var run = AuditRunner.RunRawAsync(new Dictionary<string, string?>(),
                ["--state-dir", stateDir, "log", "--follow", "--qube", "followed", "--qube", "first", "-o", "jsonl"], output, cts.Token);

            // Nothing about either qube yet; the follower is polling.
            await Task.Delay(1000);
            Assert.Equal("", output.ToString());
            Assert.False(run.IsCompleted, run.IsCompleted ? (await run).ToString() : "");

            // A first event, shown once the follower is up (its start on a loaded machine is not what is measured).
            Assert.True((await daemon.CallAsync("admin.vm.Create.AppVM", "dom0", "", "name=first label=red")).IsOk);
            var warm = Stopwatch.StartNew();
            while (!output.ToString().Contains("\"qube\":\"first\"", StringComparison.Ordinal) && warm.Elapsed < TimeSpan.FromSeconds(30))
                await Task.Delay(20);
            Assert.Contains("\"qube\":\"first\"", output.ToString());

            var clock = Stopwatch.StartNew();
            Assert.True((await daemon.CallAsync("admin.vm.Create.AppVM", "dom0", "", "name=followed label=red")).IsOk);
            var persisted = clock.Elapsed;
            while (!output.ToString().Contains("\"qube\":\"followed\"", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(10))
                await Task.Delay(20);
            var shown = clock.Elapsed;
            Assert.Contains("\"qube\":\"followed\"", output.ToString());
            log.WriteLine($"--follow showed qube.created {(shown - persisted).TotalMilliseconds:0} ms after admin.vm.Create returned");
            // The bar is 500 ms after persistence (two 100 ms polls); leave CI room, but not seconds.
            Assert.True(shown - persisted < TimeSpan.FromSeconds(2), $"shown {(shown - persisted).TotalMilliseconds:0} ms after the call returned");

            await cts.CancelAsync();
            var result = await run;
            Assert.True(result.ExitCode == 0, result.ToString());
        }
        finally
        {
            try
            {
                Directory.Delete(stateDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
