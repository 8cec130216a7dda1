using System.Text.Json;
using Xunit;

namespace QubesActors.IntegrationTests.Cli;

/// <summary>qvm policy eval (offline) and lint: a temp policy directory and a --system file, no daemon.</summary>
public sealed class PolicyOfflineTests : IDisposable
{
    // Offline commands must never connect: a socket path nothing listens on.
    private const string NoSocket = "/nonexistent/qubesd.sock";

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"qa-policy-{Guid.NewGuid():N}");
    private readonly string _dir;
    private readonly string _system;

    public PolicyOfflineTests()
    {
        _dir = Directory.CreateDirectory(Path.Combine(_root, "policy.d")).FullName;
        _system = Path.Combine(_root, "system.json");
        File.WriteAllText(_system, """
            {"domains": {
              "dom0": {"type": "AdminVM", "tags": [], "template_for_dispvms": false, "default_dispvm": "default-dvm", "power_state": "Running", "uuid": "00000000-0000-0000-0000-000000000000"},
              "work": {"type": "AppVM", "tags": ["mine"], "template_for_dispvms": false, "default_dispvm": "default-dvm", "power_state": "Running", "uuid": "11111111-1111-1111-1111-111111111111"},
              "personal": {"type": "AppVM", "tags": ["mine"], "template_for_dispvms": false, "default_dispvm": "default-dvm", "power_state": "Running", "uuid": "22222222-2222-2222-2222-222222222222"},
              "vault": {"type": "AppVM", "tags": [], "template_for_dispvms": false, "default_dispvm": null, "power_state": "Halted", "uuid": "33333333-3333-3333-3333-333333333333"},
              "untrusted": {"type": "AppVM", "tags": [], "template_for_dispvms": false, "default_dispvm": "default-dvm", "power_state": "Running", "uuid": "44444444-4444-4444-4444-444444444444"},
              "default-dvm": {"type": "AppVM", "tags": [], "template_for_dispvms": true, "default_dispvm": "default-dvm", "power_state": "Halted", "uuid": "55555555-5555-5555-5555-555555555555"}
            }}
            """);
        Write("30-test.policy", """
            # line 1 is a comment
            qubes.Filecopy   *      work     personal  allow
            qubes.Filecopy   *      @anyvm   @anyvm    ask default_target=personal
            qubes.Gpg        +work  @anyvm   vault     deny
            qubes.Gpg        *      @anyvm   @default  allow target=vault user=gpg notify=yes
            test.NoTarget    *      @anyvm   @anyvm    allow
            test.Lazy        *      @anyvm   @anyvm    allow autostart=no
            test.Disp        *      @anyvm   @dispvm   allow

            """);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Write(string name, string text, string? dir = null) => File.WriteAllText(Path.Combine(dir ?? _dir, name), text);

    private Task<QvmResult> Eval(params string[] args) => QvmRunner.RunAsync(NoSocket, ["policy", "eval", "--policy-dir", _dir, "--system", _system, .. args]);

    private async Task<JsonElement> EvalJson(params string[] args)
    {
        var r = await Eval(["--json", .. args]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Err);
        using var json = JsonDocument.Parse(r.Out);
        return json.RootElement.Clone();
    }

    /// <summary>The whole object, compact, in the documented field order.</summary>
    private static string Compact(JsonElement e) => JsonSerializer.Serialize(e);

    [Fact]
    public async Task Allow_prints_every_field_as_aligned_lines()
    {
        var r = await Eval("qubes.Filecopy", "work", "personal");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(
            "result            allow\n" +
            "target            personal\n" +
            "user              DEFAULT\n" +
            "notify            no\n" +
            "autostart         yes\n" +
            "targets_for_ask   -\n" +
            "default_target    -\n" +
            "reason            -\n" +
            $"matched           {_dir}/30-test.policy:2\n" +
            "requested_target  personal\n", r.Out);
        Assert.Equal("", r.Err);
    }

    [Fact]
    public async Task Allow_json_with_redirect_user_and_notify()
    {
        var o = await EvalJson("qubes.Gpg", "work", "");
        Assert.Equal(
            $$"""{"result":"allow","target":"vault","user":"gpg","notify":true,"autostart":true,"targets_for_ask":[],"default_target":null,"reason":null,"matched":{"file":"{{_dir}}/30-test.policy","line":5},"requested_target":"@default"}""",
            Compact(o));
    }

    [Theory]
    [InlineData(new[] { "qubes.Gpg+work", "work", "vault" }, "denied by policy 30-test.policy:4", 4)]
    [InlineData(new[] { "other.Service", "work", "personal" }, "no matching rule found", null)]
    [InlineData(new[] { "test.NoTarget", "work", "" }, "policy define 'allow' action at 30-test.policy:6 but no target is specified by caller or policy", 6)]
    [InlineData(new[] { "test.Lazy", "work", "vault" }, "target vault is denied because it would require autostart", 7)]
    // "--" before an @-token: System.CommandLine would read "@dispvm" as a response file (see docs/qvm.md).
    [InlineData(new[] { "test.Disp", "vault", "--", "@dispvm" }, "policy define 'allow' action to @dispvm at 30-test.policy:8 but no DispVM base is set for this VM", 8)]
    public async Task Deny_json_carries_the_reason(string[] call, string reason, int? line)
    {
        var o = await EvalJson(call);
        Assert.Equal("deny", o.GetProperty("result").GetString());
        // Locations name files by full path.
        Assert.Equal(reason.Replace("30-test.policy", $"{_dir}/30-test.policy", StringComparison.Ordinal), o.GetProperty("reason").GetString());
        if (line is null)
            Assert.Equal(JsonValueKind.Null, o.GetProperty("matched").ValueKind);
        else
            Assert.Equal(line, o.GetProperty("matched").GetProperty("line").GetInt32());
    }

    [Fact]
    public async Task Unknown_target_is_normalised_to_default()
    {
        var o = await EvalJson("qubes.Filecopy", "work", "no-such-qube");
        Assert.Equal("@default", o.GetProperty("requested_target").GetString());
    }

    [Fact]
    public async Task Ask_lists_sorted_candidates_and_the_default_target()
    {
        var o = await EvalJson("qubes.Filecopy", "untrusted", "work");
        Assert.Equal(
            $$"""{"result":"ask","target":null,"user":null,"notify":false,"autostart":true,"targets_for_ask":["@dispvm:default-dvm","default-dvm","personal","vault","work"],"default_target":"personal","reason":null,"matched":{"file":"{{_dir}}/30-test.policy","line":3},"requested_target":"work"}""",
            Compact(o));

        var text = await Eval("qubes.Filecopy", "untrusted", "work");
        Assert.Contains("result            ask\n", text.Out, StringComparison.Ordinal);
        Assert.Contains("targets_for_ask   @dispvm:default-dvm default-dvm personal vault work\n", text.Out, StringComparison.Ordinal);
        Assert.Contains("default_target    personal\n", text.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ask_answer_allow_and_deny_follow_the_ask_through()
    {
        var allowed = await EvalJson("qubes.Filecopy", "untrusted", "work", "--ask-answer", "allow:vault");
        Assert.Equal("allow", allowed.GetProperty("result").GetString());
        Assert.Equal("vault", allowed.GetProperty("target").GetString());

        var denied = await EvalJson("qubes.Filecopy", "untrusted", "work", "--ask-answer", "deny");
        Assert.Equal("deny", denied.GetProperty("result").GetString());
        Assert.Equal($"denied by the user {_dir}/30-test.policy:3", denied.GetProperty("reason").GetString());

        var invalid = await EvalJson("qubes.Filecopy", "untrusted", "work", "--ask-answer", "allow:dom0");
        Assert.Equal("deny", invalid.GetProperty("result").GetString());
        Assert.Equal("target dom0 is not a valid choice", invalid.GetProperty("reason").GetString());

        // Not an ask: the answer changes nothing.
        var plain = await EvalJson("qubes.Filecopy", "work", "personal", "--ask-answer", "deny");
        Assert.Equal("allow", plain.GetProperty("result").GetString());
    }

    [Fact]
    public async Task A_broken_policy_is_a_parse_error_decision_with_exit_0()
    {
        Write("20-broken.policy", "qubes.Filecopy * @anyvm @anyvm allow # trailing comment\n");
        var o = await EvalJson("qubes.Filecopy", "work", "personal");
        Assert.Equal("parse-error", o.GetProperty("result").GetString());
        Assert.StartsWith($"{_dir}/20-broken.policy:1: ", o.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Null(o.GetProperty("target").GetString());
    }

    [Fact]
    public async Task The_first_policy_dir_wins_for_a_name()
    {
        var runtime = Directory.CreateDirectory(Path.Combine(_root, "run")).FullName;
        Write("30-test.policy", "qubes.Filecopy * @anyvm @anyvm deny\n", runtime);
        var r = await QvmRunner.RunAsync(NoSocket, "policy", "eval", "qubes.Filecopy", "work", "personal", "--policy-dir", runtime, "--policy-dir", _dir, "--system", _system, "-o", "json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var json = JsonDocument.Parse(r.Out);
        Assert.Equal($"denied by policy {runtime}/30-test.policy:1", json.RootElement.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Untrusted_policy_text_is_printed_without_markup_and_escaped()
    {
        Write("10-markup.policy", "qubes.[red]x[/] * @anyvm @anyvm deny\n");
        var r = await Eval("qubes.Filecopy", "work", "personal");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("result            parse-error\n", r.Out, StringComparison.Ordinal);
        Assert.Contains($"{_dir}/10-markup.policy:1: ", r.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--policy-dir", "X")]
    [InlineData("--system", "X")]
    public async Task Policy_dir_and_system_go_together(string option, string value)
    {
        var r = await QvmRunner.RunAsync(NoSocket, "policy", "eval", "qubes.Filecopy", "work", "personal", option, value);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("qvm policy eval: error: --policy-dir and --system go together (offline evaluation); without both qubesd evaluates\n", r.Err);
    }

    [Fact]
    public async Task Usage_and_input_errors()
    {
        var badAnswer = await Eval("qubes.Filecopy", "work", "personal", "--ask-answer", "yes");
        Assert.Equal(2, badAnswer.ExitCode);
        Assert.Equal("qvm policy eval: error: --ask-answer must be deny or allow:TARGET, not 'yes'\n", badAnswer.Err);

        var missingDir = await QvmRunner.RunAsync(NoSocket, "policy", "eval", "qubes.Filecopy", "work", "personal", "--policy-dir", Path.Combine(_root, "nope"), "--system", _system);
        Assert.Equal(2, missingDir.ExitCode);

        File.WriteAllText(_system, "{not json");
        var badSystem = await Eval("qubes.Filecopy", "work", "personal");
        Assert.Equal(1, badSystem.ExitCode);
        Assert.StartsWith("qvm policy eval: error: cannot read --system file", badSystem.Err, StringComparison.Ordinal);
        Assert.Equal("", badSystem.Out);
    }

    [Fact]
    public async Task Lint_of_a_good_policy_prints_nothing()
    {
        var r = await QvmRunner.RunAsync(NoSocket, "policy", "lint", _dir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Out);
    }

    [Fact]
    public async Task Lint_reports_the_first_error_of_every_file_and_exits_1()
    {
        Write("10-a.policy", "qubes.Filecopy * @anyvm @anyvm allow\nqubes.X * @anyvm\nqubes.Y * @anyvm @anyvm bogus\n");
        Write("20-b.policy", "\n\n!nonsense\n");
        Write("40-c.policy", "!include include/missing\n");
        var r = await QvmRunner.RunAsync(NoSocket, "policy", "lint", _dir);
        Assert.Equal(1, r.ExitCode);
        var lines = r.OutLines;
        Assert.Equal(3, lines.Length);
        Assert.StartsWith($"{_dir}/10-a.policy:2: ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith($"{_dir}/20-b.policy:3: ", lines[1], StringComparison.Ordinal);
        Assert.StartsWith($"{_dir}/40-c.policy:1: ", lines[2], StringComparison.Ordinal);

        var json = await QvmRunner.RunAsync(NoSocket, "policy", "lint", _dir, "-o", "json");
        Assert.Equal(1, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal([$"{_dir}/10-a.policy", $"{_dir}/20-b.policy", $"{_dir}/40-c.policy"], doc.RootElement.EnumerateArray().Select(e => e.GetProperty("file").GetString()));
        Assert.Equal(2, doc.RootElement[0].GetProperty("line").GetInt32());
    }

    [Fact]
    public async Task Lint_reports_an_invalid_file_name()
    {
        Write("50-Upper.policy", "qubes.Filecopy * @anyvm @anyvm deny\n");
        var r = await QvmRunner.RunAsync(NoSocket, "policy", "lint", _dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.OutLines);
        Assert.Contains("50-Upper.policy", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replace_token_options_are_exclusive_and_checked_before_any_call()
    {
        var both = await QvmRunner.RunAsync(NoSocket, "policy", "replace", "30-user", "--new", "--any", "--from", _system);
        Assert.Equal(2, both.ExitCode);
        Assert.Equal("qvm policy replace: error: --token, --new and --any are mutually exclusive\n", both.Err);

        // Valid options reach the daemon: here none, which is a runtime error naming the socket.
        var noDaemon = await QvmRunner.RunAsync(NoSocket, "policy", "replace", "30-user", "--new", "--from", _system);
        Assert.Equal(1, noDaemon.ExitCode);
        Assert.StartsWith($"qvm policy replace: error: cannot connect to qubesd at '{NoSocket}'", noDaemon.Err, StringComparison.Ordinal);

        var unreadable = await QvmRunner.RunAsync(NoSocket, "policy", "replace", "30-user", "--from", Path.Combine(_root, "nope"));
        Assert.Equal(1, unreadable.ExitCode);
        Assert.StartsWith("qvm policy replace: error: cannot read ", unreadable.Err, StringComparison.Ordinal);
    }
}
