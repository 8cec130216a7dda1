using System.Text.Json;
using QubesActors.Audit.Journal;
using QubesActors.Audit.Timeline;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary><c>show</c>, <c>show --at</c> and <c>stats</c> on a journal the runtime wrote (crashes and restarts included).</summary>
public sealed class TimelineCommandTests(TimelineJournalFixture journal) : IClassFixture<TimelineJournalFixture>
{
    private Task<AuditResult> Run(params string[] args) => AuditRunner.RunAsync(journal.StateDir, args);

    private static AuditResult Ok(AuditResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    private async Task<JsonElement> Json(params string[] args) => JsonDocument.Parse(Ok(await Run(args)).Out).RootElement.Clone();

    [Fact]
    public async Task Show_gives_every_power_span_of_worker_with_its_duration_and_the_last_one_open()
    {
        var life = (await Json("show", "worker", "-o", "json")).GetProperty("lives").EnumerateArray().Single();
        var spans = life.GetProperty("spans").EnumerateArray().ToList();
        Assert.Equal(["Halted", "Running", "Paused", "Running", "Halted"], spans.Select(s => s.GetProperty("state").GetString()));
        Assert.Equal([false, false, false, false, true], spans.Select(s => s.GetProperty("open").GetBoolean()));
        for (var i = 1; i < spans.Count; i++)
            Assert.Equal(spans[i - 1].GetProperty("end").GetString(), spans[i].GetProperty("start").GetString());
        var running = spans[1];
        Assert.True(running.GetProperty("duration_ms").GetInt64() >= TimelineJournalFixture.RunningAtLeast.TotalMilliseconds, running.ToString());
        Assert.Equal(DateTimeOffset.Parse(running.GetProperty("end").GetString()!) - DateTimeOffset.Parse(running.GetProperty("start").GetString()!),
            TimeSpan.FromMilliseconds(running.GetProperty("duration_ms").GetInt64()));

        var table = Ok(await Run("show", "worker")).OutLines;
        var runningLine = Assert.Single(table, l => l.TrimStart().StartsWith("Running", StringComparison.Ordinal) && l.Contains(running.GetProperty("start").GetString()!));
        Assert.EndsWith(PowerSpan.FormatDuration(TimeSpan.FromMilliseconds(running.GetProperty("duration_ms").GetInt64())), runningLine);
        Assert.Contains(table, l => l.TrimStart().StartsWith("Halted", StringComparison.Ordinal) && l.Contains("now") && l.EndsWith("(so far)"));
        Assert.Contains(table, l => l.Contains("qube.property-set") && l.EndsWith("memory=512"));
        Assert.Contains(table, l => l.Contains("summary  1 starts, 0 crashes"));
    }

    [Fact]
    public async Task Show_at_reconstructs_properties_and_power_before_and_after_a_change_and_a_start()
    {
        var before = await Json("show", "worker", "--at", AuditDetails.FormatTime(journal.BeforeMemorySet), "-o", "json");
        var memory = before.GetProperty("properties").GetProperty("memory");
        Assert.Equal("800", memory.GetProperty("value").GetString());
        Assert.Equal("default (template tpl)", memory.GetProperty("source").GetString());
        Assert.Equal("Halted", before.GetProperty("power").GetString());
        Assert.Equal("default (global default_netvm)", before.GetProperty("properties").GetProperty("netvm").GetProperty("source").GetString());

        var after = await Json("show", "worker", "--at", AuditDetails.FormatTime(journal.AfterMemorySet), "-o", "json");
        Assert.Equal("512", after.GetProperty("properties").GetProperty("memory").GetProperty("value").GetString());
        Assert.Equal("set", after.GetProperty("properties").GetProperty("memory").GetProperty("source").GetString());
        Assert.Equal("Halted", after.GetProperty("power").GetString());

        var table = Ok(await Run("show", "worker", "--at", AuditDetails.FormatTime(journal.WhileRunning))).OutLines;
        Assert.Matches(@"^  power +Running since \d{4}-", Assert.Single(table, l => l.TrimStart().StartsWith("power", StringComparison.Ordinal)));
        Assert.Matches(@"^  memory +512 +set$", Assert.Single(table, l => l.TrimStart().StartsWith("memory ", StringComparison.Ordinal)));
        Assert.Matches(@"^  vcpus +2 +default$", Assert.Single(table, l => l.TrimStart().StartsWith("vcpus ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Show_at_a_time_before_the_qube_existed_says_so_and_exits_1()
    {
        var result = await Run("show", "worker", "--at", AuditDetails.FormatTime(journal.WorkerCreated.AddHours(-1)));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no qube named worker existed at", result.Err);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task A_name_that_never_existed_is_a_clear_error_with_exit_1()
    {
        var result = await Run("show", "nosuchqube");
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("qubes-audit: no qube named nosuchqube in the journal\n", result.Err);
        Assert.Equal(1, (await Run("show", "nosuchqube", "--at", "now")).ExitCode);
        Assert.Equal(2, (await Run("show", "worker", "--at", "not a time")).ExitCode);
    }

    [Fact]
    public async Task Show_explains_the_restarts_of_a_crashing_qube_and_the_restart_limit()
    {
        var result = Ok(await Run("show", "crashy"));
        Assert.Contains("summary  2 starts, 2 crashes, 1 restarts scheduled, 1 restart limit hits", result.Out);
        var restarts = result.Out[result.Out.IndexOf("restarts and failures:", StringComparison.Ordinal)..result.Out.IndexOf("  events:", StringComparison.Ordinal)];
        Assert.Contains("qube.stopped", restarts);
        Assert.Contains("kernel panic", restarts);
        Assert.Contains("qube.restart-scheduled", restarts);
        Assert.Contains("qube.failed", restarts);
        Assert.Contains("start limit hit", restarts);
        var spans = (await Json("show", "crashy", "-o", "json")).GetProperty("lives")[0].GetProperty("spans").EnumerateArray().Select(s => s.GetProperty("state").GetString());
        Assert.Equal(["Halted", "Running", "Halted", "Running", "Halted"], spans);
    }

    [Fact]
    public async Task A_name_created_removed_and_created_again_shows_both_lives()
    {
        var result = Ok(await Run("show", "phoenix"));
        Assert.Contains("phoenix  life 1 of 2", result.Out);
        Assert.Contains("phoenix  life 2 of 2", result.Out);
        var lives = (await Json("show", "phoenix", "-o", "json")).GetProperty("lives").EnumerateArray().ToList();
        Assert.Equal(JsonValueKind.String, lives[0].GetProperty("removed").ValueKind);
        Assert.Equal(JsonValueKind.Null, lives[1].GetProperty("removed").ValueKind);
        Assert.NotEqual(lives[0].GetProperty("uuid").GetString(), lives[1].GetProperty("uuid").GetString());
        Assert.Equal(["Halted", "Running"], lives[1].GetProperty("spans").EnumerateArray().Select(s => s.GetProperty("state").GetString()));
        // The first life ended at its removal: no open span.
        Assert.False(lives[0].GetProperty("spans").EnumerateArray().Last().GetProperty("open").GetBoolean());
    }

    [Fact]
    public async Task Stats_counts_starts_crashes_restart_loops_and_running_time_busiest_first()
    {
        var stats = (await Json("stats", "-o", "json")).EnumerateArray().ToDictionary(s => s.GetProperty("qube").GetString()!);
        var crashy = stats["crashy"];
        Assert.Equal(2, crashy.GetProperty("starts").GetInt32());
        Assert.Equal(2, crashy.GetProperty("crashes").GetInt32());
        Assert.Equal(1, crashy.GetProperty("restarts_scheduled").GetInt32());
        Assert.Equal(1, crashy.GetProperty("restart_loops").GetInt32());
        Assert.Equal("Halted (failed)", crashy.GetProperty("status").GetString());
        var worker = stats["worker"];
        Assert.Equal(1, worker.GetProperty("starts").GetInt32());
        Assert.Equal(0, worker.GetProperty("crashes").GetInt32());
        Assert.True(worker.GetProperty("running_ms").GetInt64() >= TimelineJournalFixture.RunningAtLeast.TotalMilliseconds);
        Assert.Equal(2, stats["phoenix"].GetProperty("lives").GetInt32());
        Assert.Equal(1, stats[TimelineJournalFixture.HostileName].GetProperty("denied").GetInt32());

        var order = (await Json("stats", "-o", "json")).EnumerateArray().Select(s => s.GetProperty("events").GetInt64()).ToList();
        Assert.Equal(order.OrderByDescending(n => n), order);

        var table = Ok(await Run("stats")).OutLines;
        Assert.StartsWith("QUBE", table[0]);
        Assert.Matches(@"^crashy +\d+ +Halted \(failed\) +\d{4}-\S+ +[\d.hms ]+ +2 +2 +1 +1 +0 +1$", Assert.Single(table, l => l.StartsWith("crashy ", StringComparison.Ordinal)));
        var csv = Ok(await Run("stats", "-o", "csv")).OutLines;
        Assert.Equal("qube,label,events,status,last_start,running_ms,starts,crashes,restarts_scheduled,restart_loops,denied,lives", csv[0]);
        Assert.Contains(csv, l => l.StartsWith("crashy,orange,", StringComparison.Ordinal) && l.EndsWith(",2,2,1,1,0,1"));
    }

    [Fact]
    public async Task Hostile_names_reach_the_terminal_escaped_in_show_and_stats()
    {
        var show = Ok(await Run("show", TimelineJournalFixture.HostileName));
        Assert.DoesNotContain('\u001b', show.Out);
        Assert.Contains(@"<b>bold</b>\x1b[31m", show.Out);
        Assert.Contains(TerminalText.Escape(TimelineJournalFixture.HostileName) + "  life 1 of 1", show.Out);
        foreach (var format in new[] { "table", "csv", "json" })
        {
            var stats = Ok(await Run("stats", "-o", format)).Out;
            Assert.DoesNotContain('\u001b', stats);
            Assert.Contains(format == "json" ? @"\u001B[31m" : @"\x1b[31m", stats, StringComparison.OrdinalIgnoreCase);
        }
    }
}
