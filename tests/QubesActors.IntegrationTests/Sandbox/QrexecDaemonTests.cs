using System.Text;
using System.Text.Json;
using QubesActors.IntegrationTests.Audit;
using QubesActors.Sandbox.Qrexec;
using Xunit;

namespace QubesActors.IntegrationTests.Sandbox;

/// <summary>
/// qrexec between qubes through qubesd on the sandbox backend, as a user drives it: a shell in a qube (reached from
/// dom0 through qubes.VMShell) runs the in-qube tools; the shipped policy plus one rule of the test's decide; the
/// decisions are in the journal with the calling qube as source.
/// </summary>
[Collection(SandboxDaemonCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class QrexecDaemonTests : IAsyncLifetime
{
    private readonly SandboxDaemon _sd = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _sd.DisposeAsync();

    private string Dom0Socket => Path.Combine(_sd.StateDir, "qrexec.sock");

    /// <summary>Runs <paramref name="script"/> in <paramref name="qube"/>'s shell (qubes.VMShell from dom0, not subject to the policy).</summary>
    private async Task<(int Exit, string Out, string Err)> ShellAsync(string qube, string script)
    {
        using var stdin = new MemoryStream(Encoding.UTF8.GetBytes(script.Replace("\r\n", "\n") + "\n"));
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var exit = await QrexecClient.CallAsync(Dom0Socket, qube, "qubes.VMShell", stdin, stdout, stderr, timeout.Token);
        return (exit, Encoding.UTF8.GetString(stdout.ToArray()), Encoding.UTF8.GetString(stderr.ToArray()));
    }

    private async Task WaitGoneAsync(string qube)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((await _sd.StatesAsync()).ContainsKey(qube) && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.False((await _sd.StatesAsync()).ContainsKey(qube), $"{qube} still exists after its call");
    }

    [Fact]
    public async Task Calls_between_qubes_are_decided_by_the_policy_and_journaled_with_the_calling_qube_as_source()
    {
        var daemon = await _sd.StartAsync();
        // One rule of the user's: work may send files to personal without being asked.
        await File.WriteAllTextAsync(Path.Combine(_sd.StateDir, "policy.d", "30-user.policy"), "qubes.Filecopy  *  work  personal  allow\n");
        await Task.Delay(1000); // the policy reloads 200 ms after a change
        Assert.Equal("Halted", (await _sd.StatesAsync())["personal"]);

        // Allowed: the file reaches personal (started by the call) under ~/QubesIncoming/work/.
        var copy = await ShellAsync("work", "mkdir -p /rw/home && echo 'quarterly report' > /rw/home/report.txt && qvm-copy-to-vm personal /rw/home/report.txt; echo rc=$?");
        Assert.Contains("rc=0", copy.Out);
        Assert.Equal("Running", (await _sd.StatesAsync())["personal"]);
        var received = await ShellAsync("personal", "cat /rw/home/QubesIncoming/work/report.txt");
        Assert.Equal((0, "quarterly report\n"), (received.Exit, received.Out));

        // Denied by the shipped policy (qubes.VMShell between app qubes): refused inside the calling qube.
        var denied = await ShellAsync("work", "echo 'echo owned' | qrexec-client-vm personal qubes.VMShell; echo rc=$?");
        Assert.Contains("rc=126", denied.Out);
        Assert.DoesNotContain("owned", denied.Out);
        Assert.Contains("Request refused", denied.Out + denied.Err);

        // The shipped policy sends qubes.GetDate to dom0, which qubesd answers itself (clock synchronisation).
        var date = await ShellAsync("work", "qrexec-client-vm @default qubes.GetDate; echo rc=$?");
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\nrc=0\n$", date.Out);

        // Asked (qubes.Filecopy to another qube): there is nobody to ask on a headless qubesd, so it is denied.
        var asked = await ShellAsync("work", "qvm-copy-to-vm untrusted /rw/home/report.txt; echo rc=$?");
        Assert.Contains("rc=126", asked.Out);
        Assert.Equal("Halted", (await _sd.StatesAsync())["untrusted"]);

        // @dispvm: a new disposable runs the call and is gone afterwards.
        var disposable = await ShellAsync("work", "echo hostname | qrexec-client-vm @dispvm qubes.VMShell");
        var dispName = disposable.Out.Trim();
        Assert.StartsWith("disp", dispName);
        await WaitGoneAsync(dispName);

        // Open in a disposable: the document goes to a new disposable, which is destroyed when the call ends.
        var before = (await _sd.StatesAsync()).Keys.ToHashSet();
        var opened = await ShellAsync("work", "qvm-open-in-dvm /rw/home/report.txt; echo rc=$?");
        Assert.Contains("rc=0", opened.Out);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!(await _sd.StatesAsync()).Keys.ToHashSet().SetEquals(before) && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.Equal(before.Order(), (await _sd.StatesAsync()).Keys.Order());

        // The journal: each call's decision, its source the qube whose channel it came in on.
        await _sd.ShutdownAllAsync();
        var log = await AuditRunner.RunAsync(_sd.StateDir, "log", "--kind", "policy", "-o", "jsonl");
        Assert.Equal(0, log.ExitCode);
        var decisions = log.OutLines.Select(l => JsonDocument.Parse(l).RootElement).Select(e => e.GetRawText()).ToList();
        Assert.Contains(decisions, d => d.Contains("qubes.Filecopy", StringComparison.Ordinal) && d.Contains("\"personal\"", StringComparison.Ordinal)
                                        && d.Contains("allow", StringComparison.Ordinal) && d.Contains("work", StringComparison.Ordinal));
        Assert.Contains(decisions, d => d.Contains("qubes.VMShell", StringComparison.Ordinal) && d.Contains("deny", StringComparison.Ordinal)
                                        && d.Contains("work", StringComparison.Ordinal));
        Assert.Contains(decisions, d => d.Contains("qubes.OpenInVM", StringComparison.Ordinal) && d.Contains("@dispvm", StringComparison.Ordinal));
        // dom0's own calls (the test's shells) are journaled too, as calls the policy does not restrict.
        Assert.Contains(decisions, d => d.Contains("qrexec dom0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_preloaded_disposable_serves_a_dispvm_call_and_is_replaced()
    {
        var daemon = await _sd.StartAsync();
        _ = (await daemon.CallAsync("admin.vm.feature.Set", "default-dvm", "preload-dispvm-max", "1")).OkText;
        string preloaded = "";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (preloaded.Length == 0 && DateTime.UtcNow < deadline)
        {
            var listed = await daemon.CallAsync("admin.vm.feature.Get", "default-dvm", "preload-dispvm");
            preloaded = listed.IsOk ? listed.OkText.Trim() : "";
            await Task.Delay(100);
        }
        Assert.StartsWith("disp", preloaded);
        Assert.Equal("Paused", (await _sd.StatesAsync())[preloaded]);

        var call = await ShellAsync("work", "echo hostname | qrexec-client-vm @dispvm qubes.VMShell");
        Assert.True(call.Out.Trim() == preloaded, $"the preloaded {preloaded} should have served the call: {call}"); // the preloaded one served the call
        await WaitGoneAsync(preloaded);
        // A replacement is preloaded in the background.
        string replacement = "";
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((replacement.Length == 0 || replacement == preloaded) && DateTime.UtcNow < deadline)
        {
            var listed = await daemon.CallAsync("admin.vm.feature.Get", "default-dvm", "preload-dispvm");
            replacement = listed.IsOk ? listed.OkText.Trim() : "";
            await Task.Delay(100);
        }
        Assert.StartsWith("disp", replacement);
        Assert.NotEqual(preloaded, replacement);
    }
}
