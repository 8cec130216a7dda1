using System.Text.Json;
using QubesActors.Audit.Journal;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary><c>qubes-audit log</c> on a journal written by a real qubesd: every filter and output format, and escaping.</summary>
public sealed class AuditLogTests(AuditJournalFixture journal) : IClassFixture<AuditJournalFixture>
{
    private const string Q = AuditJournalFixture.Qube;

    private Task<AuditResult> Log(params string[] args) => AuditRunner.RunAsync(journal.StateDir, ["log", .. args]);

    private static AuditResult Ok(AuditResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    private static string Event(string line) => line.Split("  ", StringSplitOptions.RemoveEmptyEntries)[2].Trim();

    private async Task<List<JsonElement>> Jsonl(params string[] args) =>
        [.. Ok(await Log([.. args, "-o", "jsonl"])).OutLines.Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    [Fact]
    public async Task Table_shows_the_qube_s_life_in_order_with_time_cause_and_details()
    {
        var lines = Ok(await Log("--qube", Q, "--kind", "lifecycle", "--kind", "property")).OutLines;
        Assert.Equal(["qube.created", "qube.started", "qube.property-set", "qube.feature-set", "qube.stopped"], lines.Select(Event));
        Assert.All(lines, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  audited ", l));
        Assert.Contains("admin by dom0", lines[1]);
        Assert.Contains("(admin.vm.Start)", lines[1]);
        Assert.EndsWith("memory=512", lines[2]);
    }

    [Fact]
    public void Reads_while_qubesd_runs()
    {
        Assert.True(journal.WhileRunning.ExitCode == 0, journal.WhileRunning.ToString());
        Assert.Equal(7, journal.WhileRunning.OutLines.Length);
    }

    [Fact]
    public async Task Without_filters_every_event_is_listed_in_global_order()
    {
        var all = await Jsonl();
        var orderings = all.Select(e => e.GetProperty("ordering").GetInt64()).ToList();
        Assert.Equal(orderings.Order(), orderings);
        Assert.Contains(all, e => e.GetProperty("qube").GetString() == "sys-net");
        Assert.True(all.Count > 20, $"{all.Count} events");
    }

    [Theory]
    [InlineData("lifecycle", new[] { "qube.created", "qube.started", "qube.stopped" })]
    [InlineData("property", new[] { "qube.property-set", "qube.feature-set" })]
    [InlineData("admin", new[] { "qube.created", "qube.started", "qube.property-set", "qube.feature-set", "qube.stopped" })]
    [InlineData("firewall", new string[0])]
    [InlineData("policy", new[] { "policy.decided", "policy.decided" })]
    public async Task Kind_filters_by_tag(string kind, string[] expected)
    {
        var lines = Ok(await Log("--qube", Q, "--kind", kind)).OutLines;
        Assert.Equal(expected, lines.Select(Event));
    }

    [Fact]
    public async Task Unknown_kind_is_a_usage_error()
    {
        var result = await Log("--kind", "nonsense");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("nonsense", result.Err);
    }

    [Fact]
    public async Task Qube_is_repeatable_and_event_takes_short_or_full_names()
    {
        var started = Ok(await Log("--event", "started", "--qube", Q, "--qube", "sys-net")).OutLines;
        Assert.Equal(2, started.Length);
        Assert.All(started, l => Assert.Equal("qube.started", Event(l)));
        Assert.Equal(started, Ok(await Log("--event", "qube.started.v1", "--qube", Q, "--qube", "sys-net")).OutLines);
        Assert.Equal(3, Ok(await Log("--event", "started", "--event", "stopped", "--qube", Q, "--qube", "sys-net")).OutLines.Length);
    }

    [Fact]
    public async Task Policy_decisions_are_found_from_their_source_and_their_target()
    {
        var denial = Assert.Single(Ok(await Log("--qube", "personal", "--kind", "policy")).OutLines);
        Assert.Equal("policy.decided", Event(denial));
        Assert.Contains("audited", denial); // the source, in the qube column
        Assert.True(denial.Contains("qubes.VMShell+ audited -> personal: deny (denied by policy", StringComparison.Ordinal), denial);
        var decisions = await Jsonl("--event", "decided", "--qube", Q);
        Assert.Equal(["deny", "allow"], decisions.Select(d => d.GetProperty("data").GetProperty("result").GetString()));
        Assert.Equal(["policy"], decisions[0].GetProperty("kinds").EnumerateArray().Select(k => k.GetString()));
        Assert.Single(Ok(await Log("--kind", "policy", "--grep", ": deny")).OutLines);
        Assert.Contains("qubes.GetDate+ audited -> @default: allow target=dom0", Assert.Single(Ok(await Log("--kind", "policy", "--grep", "allow")).OutLines));
    }

    [Fact]
    public async Task Show_at_resolves_a_default_from_the_global_properties_of_that_moment()
    {
        // qubesd's default layout sets default_netvm = sys-firewall; "audited" never set its own netvm.
        var result = await AuditRunner.RunAsync(journal.StateDir, "show", Q, "--at", AuditDetails.FormatTime(DateTimeOffset.UtcNow), "-o", "json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Out);
        var netvm = doc.RootElement.GetProperty("properties").GetProperty("netvm");
        Assert.Equal("sys-firewall", netvm.GetProperty("value").GetString());
        Assert.Equal("default (global default_netvm)", netvm.GetProperty("source").GetString());
    }

    [Fact]
    public async Task Caller_matches_the_recorded_caller()
    {
        // The socket records "dom0 (uid=.. pid=..)": --caller dom0 matches it.
        var mine = await Jsonl("--caller", "dom0", "--qube", Q, "--kind", "admin");
        Assert.Equal(5, mine.Count);
        Assert.All(mine, e => Assert.StartsWith("dom0", e.GetProperty("cause").GetProperty("caller").GetString()));
        Assert.Empty(Ok(await Log("--caller", "sys-net")).OutLines);
    }

    [Fact]
    public async Task Since_and_until_take_absolute_and_relative_times()
    {
        var events = await Jsonl("--qube", Q);
        var started = events[1].GetProperty("time").GetString()!;
        var property = events[2].GetProperty("time").GetString()!;
        Assert.Equal(["qube.started", "qube.property-set"],
            Ok(await Log("--qube", Q, "--since", started, "--until", property)).OutLines.Select(Event));
        Assert.Equal(7, Ok(await Log("--qube", Q, "--since", "2h")).OutLines.Length);
        Assert.Empty(Ok(await Log("--qube", Q, "--until", "3d")).OutLines);
        Assert.Equal(2, (await Log("--since", "two days")).ExitCode);
    }

    [Fact]
    public async Task Grep_searches_the_line_with_smart_case()
    {
        Assert.Equal(["qube.property-set"], Ok(await Log("--grep", "memory=5\\d2")).OutLines.Select(Event));
        Assert.Equal(["qube.property-set"], Ok(await Log("--grep", "memory=512", "--qube", Q, "--kind", "property")).OutLines.Select(Event));
        Assert.Equal(["qube.feature-set"], Ok(await Log("--grep", "bold red", "--qube", Q)).OutLines.Select(Event)); // lower-case pattern: any case
        Assert.Empty(Ok(await Log("--grep", "Memory=512")).OutLines); // upper case in the pattern: exact case
        Assert.Equal(2, (await Log("--grep", "(")).ExitCode);
    }

    [Fact]
    public async Task Json_and_jsonl_and_csv_hold_the_same_events()
    {
        var jsonl = await Jsonl("--qube", Q);
        using var json = JsonDocument.Parse(Ok(await Log("--qube", Q, "-o", "json")).Out);
        Assert.Equal(jsonl.Select(e => e.GetRawText()), json.RootElement.EnumerateArray().Select(e => e.GetRawText()));
        var started = jsonl[1];
        Assert.Equal("qube.started", started.GetProperty("event").GetString());
        Assert.Equal("admin", started.GetProperty("cause").GetProperty("kind").GetString());
        Assert.Equal("Running", started.GetProperty("data").GetProperty("state").GetString());
        Assert.Equal(["lifecycle", "admin"], started.GetProperty("kinds").EnumerateArray().Select(k => k.GetString()));

        var csv = Ok(await Log("--qube", Q, "-o", "csv")).OutLines;
        Assert.Equal("time,qube,event,cause,caller,cause_detail,details,stream,sequence_nr", csv[0]);
        Assert.Equal(jsonl.Count, csv.Length - 1);
        Assert.StartsWith(started.GetProperty("time").GetString() + ",audited,qube.started,admin,", csv[2]);

        using var empty = JsonDocument.Parse(Ok(await Log("--qube", "nobody", "-o", "json")).Out);
        Assert.Equal(0, empty.RootElement.GetArrayLength());
    }

    [Theory]
    [InlineData("table")]
    [InlineData("csv")]
    [InlineData("json")]
    [InlineData("jsonl")]
    public async Task Hostile_text_never_reaches_the_terminal_raw(string format)
    {
        var result = Ok(await Log("-o", format));
        // Markup is printed as typed, never interpreted.
        Assert.Contains(AuditJournalFixture.MarkupFeatureValue, result.Out);
        foreach (var c in result.Out)
            Assert.False(char.IsControl(c) && c != '\n', $"raw U+{(int)c:X4} in {format} output");
        if (format is "table" or "csv")
        {
            Assert.Contains(@"\x1b[31mred\x1b[0m[bold]x[/]\x0d\x0afake line\x07", result.Out);
            Assert.Contains(@"evil\x1b]0;pwned\x07[red]x[/]\x9b2J\x7f", result.Out);
            Assert.Contains(@"dom0\x1b[2J", result.Out);
        }
        else
        {
            // JSON keeps the exact text, escaped by the encoder.
            var values = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Where(l => l.Contains("evil", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(values);
            Assert.Contains(@"\u001B[31m", result.Out, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Hostile_name_is_escaped_in_the_qube_column_and_still_filterable()
    {
        var lines = Ok(await Log("--qube", AuditJournalFixture.HostileName)).OutLines;
        Assert.Equal(["qube.created", "qube.feature-set"], lines.Select(Event));
        Assert.Contains(@"  evil\x1b]0;pwned\x07[red]x[/]\x9b2J\x7f  qube.created", lines[0]);
    }

    [Fact]
    public async Task Settings_resolve_as_qubesd_does()
    {
        // The environment variable qubesd honours, then --config with qubesd.state-dir, then --state-dir over both.
        var env = new Dictionary<string, string?> { ["QUBESD_STATE_DIR"] = journal.StateDir };
        Assert.Equal(7, Ok(await AuditRunner.RunRawAsync(env, ["log", "--qube", Q])).OutLines.Length);

        var conf = Path.Combine(journal.StateDir, "audit-test.conf");
        await File.WriteAllTextAsync(conf, $"qubesd.state-dir = \"{journal.StateDir}\"\n");
        Assert.Equal(7, Ok(await AuditRunner.RunRawAsync(new Dictionary<string, string?>(), ["--config", conf, "log", "--qube", Q])).OutLines.Length);
        Assert.Equal(2, Ok(await AuditRunner.RunRawAsync(new Dictionary<string, string?>(), ["log", "--config", conf, "--kind", "policy"])).OutLines.Length);

        var missing = await AuditRunner.RunRawAsync(env, ["--state-dir", journal.StateDir + "-none", "log"]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no journal at", missing.Err);
        Assert.False(Directory.Exists(journal.StateDir + "-none"), "a read-only viewer creates nothing");
    }

    [Fact]
    public async Task An_undecodable_row_is_an_error_on_stderr_and_stdout_stays_clean()
    {
        var copy = journal.StateDir + "-tampered";
        Directory.CreateDirectory(copy);
        try
        {
            using (var source = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(journal.StateDir, "journal.db")};Mode=ReadOnly;Pooling=False"))
            using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(copy, "journal.db")};Pooling=False"))
            {
                // The backup API: the rows still in the WAL come along, which a file copy would miss.
                source.Open();
                db.Open();
                source.BackupDatabase(db);
                using var edit = db.CreateCommand();
                edit.CommandText = "UPDATE journal SET message = X'7b2262726f6b656e' WHERE ordering = (SELECT MAX(ordering) FROM journal)";
                Assert.Equal(1, edit.ExecuteNonQuery());
            }
            var result = await AuditRunner.RunAsync(copy, "log", "-o", "jsonl");
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("cannot be decoded", result.Err);
            // Whatever was printed before the failure is still valid JSON lines (no log or stack trace mixed in).
            Assert.All(result.OutLines, l => JsonDocument.Parse(l).Dispose());
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public async Task Reading_never_writes_the_journal()
    {
        var db = Path.Combine(journal.StateDir, "journal.db");
        var before = (File.GetLastWriteTimeUtc(db), new FileInfo(db).Length,
            Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(db))));
        Ok(await Log());
        var after = (File.GetLastWriteTimeUtc(db), new FileInfo(db).Length,
            Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(db))));
        Assert.Equal(before, after);
    }
}
