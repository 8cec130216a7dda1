using System.Text.Json;
using QubesActors.IntegrationTests.AdminApi;
using Xunit;

namespace QubesActors.IntegrationTests.Cli;

/// <summary>qvm policy status|list|get|replace|remove against a real qubesd (its runtime policy directory).</summary>
public sealed class PolicyOnlineTests(AdminDaemonFixture fixture) : IClassFixture<AdminDaemonFixture>, IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"qa-policy-{Guid.NewGuid():N}.policy");

    private Task<QvmResult> Qvm(params string[] args) => QvmRunner.RunAsync(fixture.Daemon.SocketPath, args);

    public void Dispose() => File.Delete(_file);

    [Fact]
    public async Task Status_of_a_loading_policy_is_ok_with_exit_0()
    {
        var r = await Qvm("policy", "status");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("status  ok", r.OutLines[0]);
        var json = await Qvm("policy", "status", "-o", "json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.True(doc.RootElement.GetProperty("loaded").GetBoolean());
    }

    [Fact]
    public async Task Replace_get_list_and_remove_with_tokens()
    {
        const string Content = "qubes.QvmTest * @anyvm @anyvm deny\n";
        File.WriteAllText(_file, Content);
        var created = await Qvm("policy", "replace", "30-qvmtest", "--new", "--from", _file);
        Assert.True(created.ExitCode == 0, created.ToString());

        Assert.Contains("30-qvmtest", (await Qvm("policy", "list")).OutLines);
        var get = await Qvm("policy", "get", "30-qvmtest");
        Assert.Equal(Content, get.Out);
        var token = (await Qvm("policy", "get", "30-qvmtest", "--token")).OutLines.Single();
        Assert.StartsWith("sha256:", token, StringComparison.Ordinal);

        var again = await Qvm("policy", "replace", "30-qvmtest", "--new", "--from", _file);
        Assert.Equal(1, again.ExitCode);
        Assert.StartsWith("qvm policy replace: error: ", again.Err, StringComparison.Ordinal);

        File.WriteAllText(_file, "qubes.QvmTest * @anyvm @anyvm bogus\n");
        var broken = await Qvm("policy", "replace", "30-qvmtest", "--token", token, "--from", _file);
        Assert.Equal(1, broken.ExitCode);
        Assert.Equal(Content, (await Qvm("policy", "get", "30-qvmtest")).Out);

        var removed = await Qvm("policy", "remove", "30-qvmtest", "--token", token);
        Assert.True(removed.ExitCode == 0, removed.ToString());
        Assert.DoesNotContain("30-qvmtest", (await Qvm("policy", "list")).OutLines);
    }

    [Fact]
    public async Task Eval_asks_qubesd_against_the_live_collection_and_follows_an_ask_through()
    {
        const string Content = "qubes.QvmEval * work @anyvm ask default_target=personal\nqubes.QvmEval * @anyvm @anyvm deny\n";
        File.WriteAllText(_file, Content);
        Assert.Equal(0, (await Qvm("policy", "replace", "30-qvmeval", "--any", "--from", _file)).ExitCode);
        try
        {
            var ask = await Qvm("policy", "eval", "qubes.QvmEval+x", "work", "personal", "--json");
            Assert.True(ask.ExitCode == 0, ask.ToString());
            using (var doc = JsonDocument.Parse(ask.Out))
            {
                var o = doc.RootElement;
                Assert.Equal("ask", o.GetProperty("result").GetString());
                Assert.Equal("personal", o.GetProperty("default_target").GetString());
                var candidates = o.GetProperty("targets_for_ask").EnumerateArray().Select(e => e.GetString()).ToList();
                Assert.Contains("personal", candidates);
                Assert.DoesNotContain("work", candidates); // never the caller itself
                Assert.DoesNotContain("dom0", candidates); // @anyvm excludes dom0
                Assert.Equal("personal", o.GetProperty("requested_target").GetString());
            }
            var allowed = await Qvm("policy", "eval", "qubes.QvmEval+x", "work", "personal", "--ask-answer", "allow:personal", "--json");
            using (var doc = JsonDocument.Parse(allowed.Out))
            {
                Assert.Equal("allow", doc.RootElement.GetProperty("result").GetString());
                Assert.Equal("personal", doc.RootElement.GetProperty("target").GetString());
            }
            var denied = await Qvm("policy", "eval", "qubes.QvmEval", "personal", "work", "--json");
            using (var doc = JsonDocument.Parse(denied.Out))
            {
                Assert.Equal("deny", doc.RootElement.GetProperty("result").GetString());
                Assert.StartsWith("denied by policy ", doc.RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
                Assert.EndsWith("30-qvmeval.policy", doc.RootElement.GetProperty("matched").GetProperty("file").GetString(), StringComparison.Ordinal);
                Assert.Equal(2, doc.RootElement.GetProperty("matched").GetProperty("line").GetInt32());
            }
        }
        finally
        {
            await Qvm("policy", "remove", "30-qvmeval", "--token", "any");
        }
    }
}
