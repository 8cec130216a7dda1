using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Data.Sqlite;
using QubesActors.AdminApi.Wire;
using Xunit;
using Xunit.Abstractions;

namespace QubesActors.IntegrationTests;

/// <summary>
/// The real qubesd process driven through its socket: a SIGKILL in the middle of a burst loses nothing that was
/// acknowledged and re-adopts the running domains; SIGTERM stops cleanly and leaves the domains running; a tampered
/// journal row quarantines one qube while the daemon still starts.
/// </summary>
public sealed class DaemonProcessTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _stateDir = Directory.CreateTempSubdirectory("qa-it-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_stateDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed record CallRecord(string Qube, string Method, string Arg, string? Payload, string Outcome)
    {
        public bool Acked => Outcome == "ack";
    }

    private static readonly string[] Settled = ["Transient", "Halting", "Dying"];

    /// <summary>Waits until reconciliation has settled every qube (nothing mid-start or mid-shutdown).</summary>
    private static async Task WaitSettledAsync(QubesdProcess daemon)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var list = (await daemon.CallAsync("admin.vm.List", "dom0")).OkText;
            if (!Settled.Any(s => list.Contains($"state={s} ", StringComparison.Ordinal)) || DateTime.UtcNow > deadline)
                return;
            await Task.Delay(100);
        }
    }

    private static Dictionary<string, string> ListStates(string list) =>
        list.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .ToDictionary(l => l[..l.IndexOf(' ')], l => l.Split(' ').Single(f => f.StartsWith("state=", StringComparison.Ordinal))["state=".Length..]);

    [Fact]
    public async Task Domains_that_died_while_qubesd_was_down_are_never_listed_running_and_autostart_brings_them_back()
    {
        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            await WaitSettledAsync(daemon);
            Assert.True((await daemon.CallAsync("admin.vm.Create.AppVM", "dom0", "", "name=gone label=red")).IsOk);
            Assert.True((await daemon.CallAsync("admin.vm.Start", "gone")).IsOk);
            daemon.Kill();
        }
        // While qubesd is down, sys-usb (autostart) and gone (no autostart) die.
        var file = Path.Combine(_stateDir, "simulated-backend.json");
        var domains = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!.AsArray();
        foreach (var dead in domains.Where(d => d!["Name"]!.GetValue<string>() is "sys-usb" or "gone").ToList())
            domains.Remove(dead);
        File.WriteAllText(file, domains.ToJsonString());

        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            // The very first answer already knows: nothing is listed Running without a domain behind it.
            var first = ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText);
            Assert.Equal("Halted", first["gone"]);
            // sys-usb is either still Halted or already autostarted again (then its domain exists).
            Assert.True(first["sys-usb"] != "Running" || QubesdProcess.BackendRunning(_stateDir).Contains("sys-usb"), first["sys-usb"]);
            await AdminApi.AdminDaemonFixture.WaitUntilAsync(async () =>
                ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText)["sys-usb"] == "Running");
            Assert.Contains("sys-usb", QubesdProcess.BackendRunning(_stateDir));
            Assert.Equal("Halted", ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText)["gone"]);
        }
    }

    [Fact]
    public async Task Sigkill_in_a_burst_loses_no_acknowledged_change_and_readopts_running_domains()
    {
        var calls = new ConcurrentQueue<CallRecord>();
        var acked = 0;
        var killNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int workers = 4, qubesPerWorker = 15, killAfterAcks = 150;
        int planned;

        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            async Task<bool> Call(string qube, string method, string dest, string arg = "", string? payload = null)
            {
                string outcome;
                try
                {
                    var response = await daemon.CallAsync(method, dest, arg, payload);
                    outcome = response is AdminResponse.Ok ? "ack" : $"error:{response}";
                }
                catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or InvalidDataException)
                {
                    outcome = "lost";
                }
                calls.Enqueue(new CallRecord(qube, method, arg, payload, outcome));
                if (outcome == "ack" && Interlocked.Increment(ref acked) == killAfterAcks)
                    killNow.TrySetResult();
                return outcome != "lost";
            }

            IEnumerable<(string Method, string Dest, string Arg, string? Payload)> Script(int w, int j)
            {
                var q = $"b{w}q{j}";
                yield return ("admin.vm.Create.AppVM", "dom0", "debian-13", $"name={q} label=blue");
                yield return ("admin.vm.property.Set", q, "memory", (256 + w * 16 + j).ToString(CultureInfo.InvariantCulture));
                yield return ("admin.vm.property.Set", q, "vcpus", (1 + j % 4).ToString(CultureInfo.InvariantCulture));
                yield return ("admin.vm.Start", q, "", null);
                yield return ("admin.vm.Pause", q, "", null);
                yield return ("admin.vm.Unpause", q, "", null);
                switch (j % 4)
                {
                    case 0: yield return ("admin.vm.Shutdown", q, "", null); break;
                    case 2: yield return ("admin.vm.Pause", q, "", null); break;
                    case 3: yield return ("admin.vm.Kill", q, "", null); break;
                }
            }

            planned = Enumerable.Range(0, workers).Sum(w => Enumerable.Range(0, qubesPerWorker).Sum(j => Script(w, j).Count()));
            var burst = Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
            {
                for (var j = 0; j < qubesPerWorker; j++)
                    foreach (var (method, dest, arg, payload) in Script(w, j))
                        if (!await Call($"b{w}q{j}", method, dest, arg, payload))
                            return;
            })).ToArray();

            await Task.WhenAny(killNow.Task, Task.WhenAll(burst)).WaitAsync(TimeSpan.FromSeconds(90));
            daemon.Kill();
            await Task.WhenAll(burst).WaitAsync(TimeSpan.FromSeconds(30));
        }

        var records = calls.ToArray();
        output.WriteLine($"planned {planned} calls, sent {records.Length}, acknowledged {records.Count(r => r.Acked)}, lost {records.Count(r => r.Outcome == "lost")}");
        Assert.True(records.Length < planned, "the kill must land in the middle of the burst");
        Assert.All(records.Where(r => r.Outcome.StartsWith("error:", StringComparison.Ordinal)), r => Assert.Fail($"{r.Qube} {r.Method}: {r.Outcome}"));

        var beforeRestart = await QubesdProcess.CheckAsync(_stateDir);
        Assert.True(beforeRestart.ExitCode == 0, beforeRestart.Text);
        var backendBefore = QubesdProcess.BackendStates(_stateDir);

        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            await WaitSettledAsync(daemon);
            var check = await QubesdProcess.CheckAsync(_stateDir);
            Assert.True(check.ExitCode == 0, check.Text);
            Assert.Empty(check.Problems);
            var listed = ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText);

            // (a) every acknowledged change is there.
            foreach (var create in records.Where(r => r.Acked && r.Method.StartsWith("admin.vm.Create.", StringComparison.Ordinal)))
                Assert.True(check.Qubes.ContainsKey(create.Qube), $"acknowledged creation of {create.Qube} is missing");
            foreach (var set in records.Where(r => r.Acked && r.Method == "admin.vm.property.Set"))
                Assert.Equal($"default=False type=int {set.Payload}", (await daemon.CallAsync("admin.vm.property.Get", set.Qube, set.Arg)).OkText);
            var settledQubes = 0;
            foreach (var qube in records.GroupBy(r => r.Qube).Where(g => g.All(r => r.Acked)))
            {
                var last = qube.LastOrDefault(r => r.Method is "admin.vm.Start" or "admin.vm.Pause" or "admin.vm.Unpause" or "admin.vm.Shutdown" or "admin.vm.Kill");
                var expected = last?.Method switch
                {
                    "admin.vm.Start" or "admin.vm.Unpause" => "Running",
                    "admin.vm.Pause" => "Paused",
                    _ => "Halted",
                };
                Assert.True(expected == check.Qubes[qube.Key].Power,
                    $"{qube.Key}: last acknowledged {last?.Method ?? "create"}, --check says {check.Qubes[qube.Key].Power}; before the restart the journal said " +
                    $"{beforeRestart.Qubes[qube.Key].Power} and the backend {backendBefore.GetValueOrDefault(qube.Key, "nothing")}");
                Assert.Equal(expected, listed[qube.Key]);
                settledQubes++;
            }
            Assert.True(settledQubes > 0);

            // (b) domains running before the kill were re-adopted, not restarted. Only those where journal and backend agree:
            // a pause in flight at the kill leaves the backend paused and the journal running, and the backend wins.
            var adopted = beforeRestart.Qubes.Values
                .Where(r => r.Power is "Running" or "Paused" && backendBefore.TryGetValue(r.Name, out var backend) && backend == r.Power).ToList();
            Assert.Contains(adopted, r => r.Name == "sys-net");
            Assert.Contains(adopted, r => r.Name.StartsWith('b'));
            output.WriteLine($"re-adopted: {string.Join(", ", adopted.Select(r => $"{r.Name}({r.Power}, starts {r.Starts})"))}");
            foreach (var before in adopted)
            {
                var after = check.Qubes[before.Name];
                Assert.True(before.Starts == after.Starts, $"{before.Name} was started again: starts {before.Starts} -> {after.Starts}");
                Assert.Equal(before.Power, after.Power);
            }
            Assert.Superset(adopted.Select(r => r.Name).ToHashSet(), QubesdProcess.BackendRunning(_stateDir));
        }
    }

    [Fact]
    public async Task Sigterm_stops_cleanly_leaves_domains_running_and_the_next_start_reconciles()
    {
        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            // A second daemon on the same socket refuses to start, before touching the journal.
            var (secondExit, secondOutput) = await QubesdProcess.RunAsync("--state-dir", _stateDir, "--socket", daemon.SocketPath);
            Assert.Equal(3, secondExit);
            Assert.Contains("in use", secondOutput);
            // Nor on another socket: one daemon per state directory (two writers would fork every chain).
            var (thirdExit, thirdOutput) = await QubesdProcess.RunAsync("--state-dir", _stateDir, "--socket", Path.Combine(_stateDir, "other.sock"));
            Assert.Equal(3, thirdExit);
            Assert.Contains("in use by another qubesd", thirdOutput);

            // admin.Events on the real daemon: connection-established, then the start of work; the stream ends with the daemon.
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var events = daemon.Client.EventsAsync("work", cts.Token).GetAsyncEnumerator(cts.Token);
            Assert.True(await events.MoveNextAsync());
            Assert.Equal("connection-established", Assert.IsType<AdminResponse.Event>(events.Current).Name);

            Assert.True((await daemon.CallAsync("admin.vm.Start", "work")).IsOk);
            Assert.Equal("Running", ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText)["work"]);
            var seen = new List<string>();
            while (!seen.Contains("domain-start") && await events.MoveNextAsync())
            {
                var e = Assert.IsType<AdminResponse.Event>(events.Current);
                Assert.Equal("work", e.Subject);
                seen.Add(e.Name);
            }
            Assert.Contains("domain-start", seen);

            var exit = await daemon.TerminateAsync(TimeSpan.FromSeconds(45));
            Assert.True(exit == 0, $"exit code {exit}:\n{daemon.Output}");
            Assert.False(File.Exists(daemon.SocketPath), "the socket file is removed on a clean stop");
            Assert.False(await events.MoveNextAsync(), "the event stream ends when qubesd stops");
            await events.DisposeAsync();
        }
        Assert.Superset(new HashSet<string> { "work", "sys-net", "sys-firewall", "sys-usb" }, QubesdProcess.BackendRunning(_stateDir));
        var before = await QubesdProcess.CheckAsync(_stateDir);
        Assert.True(before.ExitCode == 0, before.Text);
        Assert.Equal("Running", before.Qubes["work"].Power);

        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            await WaitSettledAsync(daemon);
            Assert.Equal("Running", ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText)["work"]);
            var after = await QubesdProcess.CheckAsync(_stateDir);
            Assert.True(after.ExitCode == 0, after.Text);
            foreach (var name in new[] { "work", "sys-net", "sys-firewall" })
            {
                Assert.Equal(before.Qubes[name].Starts, after.Qubes[name].Starts);
                Assert.Equal("Running", after.Qubes[name].Power);
            }
            // The re-adopted domain is managed again: it shuts down on request.
            var shutdown = await daemon.CallAsync("admin.vm.Shutdown", "work", "wait");
            Assert.True(shutdown.IsOk, shutdown.ToString());
            Assert.Equal("Halted", ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText)["work"]);
            Assert.DoesNotContain("work", QubesdProcess.BackendRunning(_stateDir));
        }
    }

    [Fact]
    public async Task Tampered_journal_row_fails_check_and_quarantines_the_qube_while_qubesd_still_starts()
    {
        string uuid;
        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            Assert.True((await daemon.CallAsync("admin.vm.Create.AppVM", "dom0", "", "name=victim label=red")).IsOk);
            Assert.True((await daemon.CallAsync("admin.vm.property.Set", "victim", "memory", "512")).IsOk);
            // A later row links to the tampered one (the chain checks links; the last row of a stream has no successor).
            Assert.True((await daemon.CallAsync("admin.vm.property.Set", "victim", "vcpus", "3")).IsOk);
            uuid = (await daemon.CallAsync("admin.vm.property.Get", "victim", "uuid")).OkText["default=False type=str ".Length..];
            Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(45)));
        }

        await using (var db = new SqliteConnection($"Data Source={Path.Combine(_stateDir, "journal.db")};Pooling=False"))
        {
            await db.OpenAsync();
            await using var select = db.CreateCommand();
            select.CommandText = "SELECT ordering, CAST(message AS TEXT) FROM journal WHERE persistence_id = $id AND manifest LIKE '%property-set%' AND CAST(message AS TEXT) LIKE '%memory%'";
            select.Parameters.AddWithValue("$id", $"qube-{uuid}");
            long ordering;
            string message;
            await using (var reader = await select.ExecuteReaderAsync())
            {
                Assert.True(await reader.ReadAsync(), "the property-set row of victim");
                (ordering, message) = (reader.GetInt64(0), reader.GetString(1));
            }
            Assert.Contains("\"512\"", message);
            await using var update = db.CreateCommand();
            update.CommandText = "UPDATE journal SET message = $message WHERE ordering = $ordering";
            update.Parameters.AddWithValue("$message", System.Text.Encoding.UTF8.GetBytes(message.Replace("\"512\"", "\"4096\"", StringComparison.Ordinal)));
            update.Parameters.AddWithValue("$ordering", ordering);
            Assert.Equal(1, await update.ExecuteNonQueryAsync());
        }

        var check = await QubesdProcess.CheckAsync(_stateDir);
        output.WriteLine(check.Text);
        Assert.NotEqual(0, check.ExitCode);
        Assert.NotEmpty(check.Problems);
        Assert.NotNull(check.Qubes["victim"].Quarantine);
        Assert.All(check.Qubes.Values.Where(q => q.Name != "victim"), q => Assert.Null(q.Quarantine));

        using (var daemon = await QubesdProcess.StartAsync(_stateDir))
        {
            Assert.Contains("victim", ListStates((await daemon.CallAsync("admin.vm.List", "dom0")).OkText).Keys);
            var refused = Assert.IsType<AdminResponse.Error>(await daemon.CallAsync("admin.vm.Start", "victim"));
            Assert.Contains("quarantined", refused.Message);
            Assert.IsType<AdminResponse.Error>(await daemon.CallAsync("admin.vm.property.Set", "victim", "memory", "600"));
            // The rest of the collection works.
            Assert.True((await daemon.CallAsync("admin.vm.Start", "work")).IsOk);
        }
    }
}
