using System.Text;
using Akka.Actor;
using QubesActors.Core.Errors;
using QubesActors.Core.Policy;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;
using QubesActors.Runtime.Tests.Harness;
using Xunit;
using Xunit.Abstractions;
using static QubesActors.Runtime.Policy.PolicyProtocol;

namespace QubesActors.Runtime.Tests.Policy;

/// <summary>The policy actor with a stand-in language: hot reload, fail closed, the decision log, the Admin API's file changes.</summary>
public sealed class PolicyActorSpecs : QubesSpec, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"qa-policy-{Guid.NewGuid():N}");
    private readonly PolicyDirectories _dirs;
    private readonly FakePolicyEngine _engine = new();

    public PolicyActorSpecs(ITestOutputHelper output) : base(output)
    {
        _dirs = new PolicyDirectories(Path.Combine(_root, "run"), Path.Combine(_root, "etc"));
        Directory.CreateDirectory(_dirs.ConfigDir);
        File.WriteAllText(Path.Combine(_dirs.ConfigDir, "90-default.policy"), "qubes.Filecopy * * ask\nqubes.GetDate * * allow\n");
        Boot();
        CreateLayout();
    }

    void IDisposable.Dispose()
    {
        Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private IActorRef StartPolicy() =>
        Sys.ActorOf(PolicyActor.Props(_engine, _dirs, Host.Qubes, Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null), TimeSpan.FromMilliseconds(50)));

    private static PolicyOutcome Decide(IActorRef policy, string service, string source = "work", string target = "sys-net", PolicyCallOptions? options = null) =>
        policy.Ask<PolicyOutcome>(new EvaluatePolicy(PolicyRequest.Of(service, source, target), options ?? new(), "test"), T).GetAwaiter().GetResult();

    private static PolicyStatus Status(IActorRef policy) => policy.Ask<PolicyStatus>(new GetPolicyStatus(), T).GetAwaiter().GetResult();

    private static PolicyAdminReply Admin(IActorRef policy, object message) => policy.Ask<PolicyAdminReply>(message, T).GetAwaiter().GetResult();

    private void WriteRuntime(string name, string text)
    {
        // as an editor would: the watcher must pick it up
        File.WriteAllText(Path.Combine(_dirs.RuntimeDir, name), text);
    }

    [Fact]
    public void A_changed_file_changes_the_next_decision()
    {
        var policy = StartPolicy();
        Assert.Equal("no matching rule found", Decide(policy, "qubes.VMShell").Final.Reason);

        WriteRuntime("30-user.policy", "qubes.VMShell work sys-net allow\n");
        AwaitAssert(() => Assert.True(Decide(policy, "qubes.VMShell").Allowed), T, TimeSpan.FromMilliseconds(50));

        // the runtime directory comes first: it overrides the shipped rules
        WriteRuntime("10-first.policy", "qubes.GetDate * * deny\n");
        AwaitAssert(() => Assert.Equal("denied by policy 10-first.policy:1", Decide(policy, "qubes.GetDate").Final.Reason), T, TimeSpan.FromMilliseconds(50));

        File.Delete(Path.Combine(_dirs.RuntimeDir, "10-first.policy"));
        AwaitAssert(() => Assert.True(Decide(policy, "qubes.GetDate").Allowed), T, TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void A_broken_policy_denies_every_call_until_it_is_fixed()
    {
        var policy = StartPolicy();
        Assert.True(Decide(policy, "qubes.GetDate").Allowed);

        WriteRuntime("50-broken.policy", "qubes.GetDate * * allow\n!broken\n");
        AwaitAssert(() => Assert.False(Status(policy).Loaded), T, TimeSpan.FromMilliseconds(50));
        var denied = Decide(policy, "qubes.GetDate");
        Assert.False(denied.Allowed);
        Assert.Equal(PolicyResult.ParseError, denied.Final.Result);
        Assert.Equal("50-broken.policy:2: invalid rule", denied.Final.Reason);
        Assert.Equal(PolicyExecution.Deny, denied.Response);
        Assert.Equal("qrexec: qubes.GetDate+: work -> sys-net: error loading policy: 50-broken.policy:2: invalid rule", Assert.Single(denied.LogLines).Text);
        var status = Status(policy);
        Assert.Equal("50-broken.policy:2: invalid rule", status.Error);

        WriteRuntime("50-broken.policy", "qubes.GetDate * * allow\n");
        AwaitAssert(() => Assert.True(Decide(policy, "qubes.GetDate").Allowed), T, TimeSpan.FromMilliseconds(50));
        Assert.Null(Status(policy).Error);
    }

    [Fact]
    public void Every_decision_is_a_chained_event_tagged_policy_and_the_chain_continues_after_a_restart()
    {
        var policy = StartPolicy();
        Decide(policy, "qubes.GetDate");
        Decide(policy, "qubes.VMShell", target: "");
        var rows = AwaitRows(2);
        // Csv tag mode stores ";tag;...;" in the tags column (in no particular order): policy, and the qubes named.
        static string[] TagsOf(string tags) => [.. tags.Split(';', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];
        Assert.Equal(["policy", "qube:sys-net", "qube:work"], TagsOf(rows[0].Tags));
        Assert.Equal(["policy", "qube:work"], TagsOf(rows[1].Tags));
        Assert.All(rows, r => Assert.Equal(PolicyDecisionRecorded.Manifest, r.Manifest));
        var first = (PolicyDecisionRecorded)EventCodec.Decode(rows[0].Payload, rows[0].Manifest);
        Assert.Equal(("qubes.GetDate", "+", "work", "sys-net", "allow", "sys-net"), (first.Service, first.Argument, first.Source, first.RequestedTarget, first.Result, first.Target));
        Assert.Equal(("90-default.policy", 2, "test"), (first.File, first.Line, first.Caller));
        Assert.Equal("qrexec: qubes.GetDate+: work -> sys-net: allowed to sys-net", first.LogLine);
        var second = (PolicyDecisionRecorded)EventCodec.Decode(rows[1].Payload, rows[1].Manifest);
        Assert.Equal(("deny", "no matching rule found", "@default", (string?)null), (second.Result, second.Reason, second.NormalizedTarget, second.File));

        // a new incarnation reads the head and continues the same chain
        Sys.Stop(policy);
        var again = StartPolicy();
        Decide(again, "qubes.Filecopy");
        rows = AwaitRows(3);
        var chain = new JournalLoader.ChainBuilder(PolicyDecisionRecorded.PersistenceId);
        foreach (var r in rows)
            chain.Add(r.Seq, r.Manifest, r.Payload);
        var stream = chain.Finish();
        Assert.Null(stream.Broken);
        Assert.Equal(3, stream.LastSequenceNr);
        // an ask with nobody to ask is denied by the user (no GUI), and recorded as such
        Assert.Equal(("deny", "Ask"), (((PolicyDecisionRecorded)stream.Events[2]).Result, ((PolicyDecisionRecorded)stream.Events[2]).Evaluated));

        // the bulk read of the collection never sees the decision log
        Assert.DoesNotContain(JournalLoader.Load(Settings).Qubes, s => s.PersistenceId == PolicyDecisionRecorded.PersistenceId);
    }

    private List<(long Seq, string Manifest, byte[] Payload, string Tags)> AwaitRows(int count)
    {
        List<(long, string, byte[], string)> rows = [];
        AwaitAssert(() =>
        {
            rows = [];
            using var connection = Settings.OpenConnection();
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT sequence_number, manifest, message, tags FROM journal WHERE persistence_id = '{PolicyDecisionRecorded.PersistenceId}' ORDER BY sequence_number";
            using var reader = command.ExecuteReader();
            while (reader.Read())
                rows.Add((reader.GetInt64(0), reader.GetString(1), (byte[])reader.GetValue(2), reader.GetString(3)));
            Assert.Equal(count, rows.Count);
        }, T, TimeSpan.FromMilliseconds(50));
        return rows;
    }

    [Fact]
    public void Replace_and_Remove_check_the_token_and_refuse_a_policy_that_does_not_load()
    {
        var policy = StartPolicy();
        var change = (string token, string? content) => Admin(policy, new ChangePolicyFile(new PolicyFileChange(PolicyFileKind.Policy, "30-user", token, content), "policy.Replace", "dom0"));

        Assert.Equal("", Admin(policy, new ListPolicyFiles(PolicyFileKind.Policy)).Output);
        Assert.Null(change("new", "qubes.VMShell work sys-net allow\n").Error);
        // swapped at once, not at the watcher's pace
        Assert.True(Decide(policy, "qubes.VMShell").Allowed);
        Assert.Equal("30-user\n", Admin(policy, new ListPolicyFiles(PolicyFileKind.Policy)).Output);

        var get = Admin(policy, new GetPolicyFile(PolicyFileKind.Policy, "30-user")).Output;
        var token = get[..get.IndexOf('\n')];
        Assert.Equal(PolicyFiles.Token(Encoding.UTF8.GetBytes("qubes.VMShell work sys-net allow\n")), token);
        Assert.StartsWith("sha256:", token);
        Assert.Equal("qubes.VMShell work sys-net allow\n", get[(token.Length + 1)..]);

        AssertRefused<QubesError>(change("new", "x"), "File exists but token is 'new'");
        AssertRefused<QubesError>(change("sha256:" + new string('0', 64), "x"), "Token mismatch");
        AssertRefused<ProtocolError>(change("sha1:abc", "x"), "Unrecognized token");

        // a replacement that does not load changes nothing
        AssertRefused<QubesValueError>(change(token, "!broken\n"), "Policy change validation failed: 30-user.policy:1: invalid rule");
        Assert.Equal(get, Admin(policy, new GetPolicyFile(PolicyFileKind.Policy, "30-user")).Output);
        Assert.True(Decide(policy, "qubes.VMShell").Allowed);

        Assert.Null(change(token, "qubes.VMShell work sys-net deny\n").Error);
        Assert.False(Decide(policy, "qubes.VMShell").Allowed);
        Assert.Null(change("any", "qubes.VMShell * * ask\n").Error);

        var remove = (string t) => Admin(policy, new ChangePolicyFile(new PolicyFileChange(PolicyFileKind.Policy, "30-user", t, null), "policy.Remove", "dom0"));
        AssertRefused<QubesError>(remove(token), "Token mismatch");
        Assert.Null(remove("any").Error);
        AssertRefused<QubesError>(remove("any"), "Not found: 30-user");
        Assert.Equal("no matching rule found", Decide(policy, "qubes.VMShell").Final.Reason);

        AssertRefused<ProtocolError>(Admin(policy, new GetPolicyFile(PolicyFileKind.Policy, "../etc/90-default")),
            "Invalid policy file name: ../etc/90-default\nNames must contain only alphanumeric characters, underscore and hyphen.");
        AssertRefused<QubesError>(Admin(policy, new GetPolicyFile(PolicyFileKind.Include, "admin-local-rwx")), "Not found: admin-local-rwx");
        Assert.Null(Admin(policy, new ChangePolicyFile(new PolicyFileChange(PolicyFileKind.Include, "admin-local-rwx", "new", "work dom0 allow\n"), "policy.include.Replace", "dom0")).Error);
        Assert.Equal("admin-local-rwx\n", Admin(policy, new ListPolicyFiles(PolicyFileKind.Include)).Output);
        Assert.True(File.Exists(Path.Combine(_dirs.RuntimeDir, "include", "admin-local-rwx")));
    }

    private static void AssertRefused<TError>(PolicyAdminReply reply, string message) where TError : QubesError
    {
        Assert.NotNull(reply.Error);
        Assert.IsType<TError>(reply.Error);
        Assert.Equal(message, reply.Error!.Message);
    }
}
