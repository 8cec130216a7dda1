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
}
