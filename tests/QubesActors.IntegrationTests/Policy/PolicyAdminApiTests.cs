using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;
using QubesActors.AdminApi.Wire;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;
using Xunit;

namespace QubesActors.IntegrationTests.Policy;

/// <summary>policy.* on a real qubesd: tokens (new, any, sha256), refusals that change nothing, include files, the decision journal.</summary>
public sealed class PolicyAdminApiTests(PolicyDaemonFixture fixture) : IClassFixture<PolicyDaemonFixture>
{
    private Task<AdminResponse> Call(string method, string arg = "", string? payload = null) => fixture.Daemon.CallAsync(method, "dom0", arg, payload);

    private static string TokenOf(string content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)));

    private async Task AssertError(string cls, string message, string method, string arg = "", string? payload = null)
    {
        var error = Assert.IsType<AdminResponse.Error>(await Call(method, arg, payload));
        Assert.Equal((cls, message), (error.ClassName, error.Message));
    }

    [Fact]
    public async Task Replace_Get_and_Remove_with_tokens()
    {
        const string name = "30-api-test";
        const string first = "qubes.ApiTest * vault @default allow target=dom0\n";
        await AssertError("QubesException", $"Not found: {name}", "policy.Get", name);
        Assert.Equal("", (await Call("policy.Replace", name, "new\n" + first)).OkText);
        Assert.Contains($"{name}\n", (await Call("policy.List")).OkText, StringComparison.Ordinal);
        Assert.Equal(TokenOf(first) + "\n" + first, (await Call("policy.Get", name)).OkText);
        // swapped in by the call itself
        Assert.Equal("result=allow", await fixture.Ask("source=vault\nintended_target=\nservice_and_arg=qubes.ApiTest\njust_evaluate=yes\n\n"));

        await AssertError("QubesException", "File exists but token is 'new'", "policy.Replace", name, "new\nx");
        await AssertError("QubesException", "Token mismatch", "policy.Replace", name, TokenOf("something else") + "\n" + first);
        await AssertError("ProtocolError", "Unrecognized token", "policy.Replace", name, "deadbeef\n" + first);
        await AssertError("ProtocolError", "Payload needs to include first line with token", "policy.Replace", name, "any");

        // a replacement that does not parse is refused and changes nothing
        var broken = Assert.IsType<AdminResponse.Error>(await Call("policy.Replace", name, TokenOf(first) + "\nqubes.ApiTest * vault @default allow # comment\n"));
        Assert.Equal("QubesValueError", broken.ClassName);
        Assert.StartsWith($"Policy change validation failed: {Path.Combine(fixture.RuntimeDir, name + ".policy")}:1: ", broken.Message, StringComparison.Ordinal);
        Assert.Equal(TokenOf(first) + "\n" + first, (await Call("policy.Get", name)).OkText);
        Assert.StartsWith("status=ok\n", (await Call("policy.Status")).OkText, StringComparison.Ordinal);

        const string second = "qubes.ApiTest * vault @default deny\n";
        Assert.True((await Call("policy.Replace", name, TokenOf(first) + "\n" + second)).IsOk);
        Assert.Equal("result=deny", await fixture.Ask("source=vault\nintended_target=\nservice_and_arg=qubes.ApiTest\njust_evaluate=yes\n\n"));
        Assert.True((await Call("policy.Replace", name, "any\n" + first)).IsOk);

        await AssertError("QubesException", "Token mismatch", "policy.Remove", name, TokenOf(second));
        Assert.True((await Call("policy.Remove", name, TokenOf(first))).IsOk);
        await AssertError("QubesException", "File doesn't exist, but token isn't 'new'", "policy.Remove", name, TokenOf(first));
        Assert.DoesNotContain($"{name}\n", (await Call("policy.List")).OkText, StringComparison.Ordinal);

        await AssertError("ProtocolError", "Invalid policy file name: 30.user\nNames must contain only alphanumeric characters, underscore and hyphen.", "policy.Get", "30.user");
        await AssertError("ProtocolError", "expected an argument", "policy.Get");
        var wrongDest = Assert.IsType<AdminResponse.Error>(await fixture.Daemon.CallAsync("policy.List", "work"));
        Assert.Equal(("ProtocolError", "expected destination to be AdminVM"), (wrongDest.ClassName, wrongDest.Message));
    }

    [Fact]
    public async Task Include_files_are_seeded_and_removing_one_still_included_is_refused()
    {
        var list = (await Call("policy.include.List")).OkText;
        Assert.Contains("admin-global-ro\n", list, StringComparison.Ordinal);
        Assert.Contains("admin-policy-rwx\n", list, StringComparison.Ordinal);
        var get = (await Call("policy.include.Get", "admin-global-ro")).OkText;
        var token = get[..get.IndexOf('\n')];
        // the policy includes it: removing it would break the policy
        var refused = Assert.IsType<AdminResponse.Error>(await Call("policy.include.Remove", "admin-global-ro", token));
        Assert.Equal("QubesValueError", refused.ClassName);
        Assert.Equal(get, (await Call("policy.include.Get", "admin-global-ro")).OkText);

        Assert.Equal("result=deny", await fixture.Ask("source=untrusted\nintended_target=dom0\nservice_and_arg=admin.label.List\njust_evaluate=yes\n\n"));
        Assert.True((await Call("policy.include.Replace", "admin-global-ro", token + "\nuntrusted @adminvm allow\n")).IsOk);
        Assert.Equal("result=allow", await fixture.Ask("source=untrusted\nintended_target=dom0\nservice_and_arg=admin.label.List\njust_evaluate=yes\n\n"));
        Assert.True((await Call("policy.include.Replace", "admin-global-ro", "any\n" + get[(token.Length + 1)..])).IsOk);
        Assert.Equal("result=deny", await fixture.Ask("source=untrusted\nintended_target=dom0\nservice_and_arg=admin.label.List\njust_evaluate=yes\n\n"));
    }

    [Fact]
    public async Task A_call_from_a_qube_is_decided_by_the_policy()
    {
        var fromQube = new QubesActors.AdminApi.Client.AdminClient(fixture.Daemon.SocketPath, "untrusted");
        var denied = Assert.IsType<AdminResponse.Error>(await fromQube.CallAsync("admin.vm.notes.Get", "vault"));
        Assert.Equal(("PermissionDenied", "admin.vm.notes.Get from untrusted to vault denied by policy"), (denied.ClassName, denied.Message));

        var get = (await Call("policy.include.Get", "admin-local-ro")).OkText;
        var token = get[..get.IndexOf('\n')];
        Assert.True((await Call("policy.include.Replace", "admin-local-ro", token + "\nuntrusted vault allow,target=dom0\n")).IsOk);
        Assert.True((await fromQube.CallAsync("admin.vm.notes.Get", "vault")).IsOk);
        // only what the rule names
        Assert.IsType<AdminResponse.Error>(await fromQube.CallAsync("admin.vm.notes.Get", "work"));
        Assert.IsType<AdminResponse.Error>(await fromQube.CallAsync("admin.vm.notes.Set", "vault", "", "x"));
        Assert.True((await Call("policy.include.Replace", "admin-local-ro", "any\n" + get[(token.Length + 1)..])).IsOk);
        Assert.IsType<AdminResponse.Error>(await fromQube.CallAsync("admin.vm.notes.Get", "vault"));
    }

    [Fact]
    public async Task Decisions_are_in_the_journal_with_tag_policy()
    {
        await fixture.Ask("source=personal\nintended_target=\nservice_and_arg=qubes.JournalTest+arg1\n\n");
        await PolicyDaemonFixture.WaitUntilAsync(() => Task.FromResult(Rows().Any(r => r.Service == "qubes.JournalTest")));
        var e = Rows().Single(r => r.Service == "qubes.JournalTest");
        Assert.Equal(("+arg1", "personal", "", "@default", "deny", "Deny", "no matching rule found"),
            (e.Argument, e.Source, e.RequestedTarget, e.NormalizedTarget, e.Result, e.Evaluated, e.Reason));
        Assert.Equal("qrexec: qubes.JournalTest+arg1: personal -> : denied: no matching rule found", e.LogLine);
        Assert.StartsWith("policy-socket (uid=", e.Caller, StringComparison.Ordinal);
        Assert.Equal("policy", e.Cause.Kind);

        await fixture.Ask("source=work\nintended_target=\nservice_and_arg=qubes.GetDate\n\n");
        await PolicyDaemonFixture.WaitUntilAsync(() => Task.FromResult(Rows().Any(r => r.Service == "qubes.GetDate" && r.Result == "allow")));
        var allowed = Rows().Last(r => r.Service == "qubes.GetDate" && r.Result == "allow");
        Assert.Equal(("dom0", Path.Combine(AppContext.BaseDirectory, "config", "policy.d", "90-default.policy"), 28),
            (allowed.Target, allowed.File, allowed.Line ?? 0));
    }

    private List<PolicyDecisionRecorded> Rows()
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(fixture.StateDir, "journal.db")};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT message, manifest FROM journal WHERE persistence_id = 'qrexec-policy' AND tags LIKE '%;policy;%' ORDER BY sequence_number";
        using var reader = command.ExecuteReader();
        var rows = new List<PolicyDecisionRecorded>();
        while (reader.Read())
            rows.Add((PolicyDecisionRecorded)EventCodec.Decode((byte[])reader.GetValue(0), reader.GetString(1)));
        return rows;
    }
}
