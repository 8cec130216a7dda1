using System.Collections.Immutable;
using System.Text;
using QubesActors.Core.Policy;
using QubesActors.Runtime.Policy;
using Xunit;

namespace QubesActors.Runtime.Tests.Policy;

/// <summary>The daemon's resolutions and answers (pure), and the request parser.</summary>
public sealed class PolicyExecutionTests
{
    private static readonly Guid WorkUuid = Guid.Parse("11111111-2222-3333-4444-555555555555");
    private static readonly Guid DvmUuid = Guid.Parse("66666666-7777-8888-9999-000000000000");

    private static readonly SystemInfo System = new(new Dictionary<string, SystemDomain>
    {
        ["dom0"] = new("AdminVM", [], Uuid: Guid.Empty),
        ["work"] = new("AppVM", [], Uuid: WorkUuid),
        ["personal"] = new("AppVM", [], Uuid: Guid.NewGuid()),
        ["default-dvm"] = new("AppVM", [], TemplateForDispVms: true, Uuid: DvmUuid),
    }.ToImmutableSortedDictionary(StringComparer.Ordinal));

    private static PolicyDecision Allow(string target, string requested = "x", string? user = null, bool autostart = true) =>
        new(PolicyResult.Allow, target, user, false, autostart, [], null, null, new PolicyLocation("f", 1), requested);

    [Fact]
    public void Allow_answers_have_upstreams_lines_in_upstreams_order()
    {
        Assert.Equal($"user=DEFAULT\nresult=allow\ntarget=work\ntarget_uuid=uuid:{WorkUuid}\nautostart=True\nrequested_target=@default",
            PolicyExecution.AllowResponse(Allow("work", "@default"), System));
        Assert.Equal($"user=DEFAULT\nresult=allow\ntarget=uuid:{WorkUuid}\ntarget_uuid=uuid:{WorkUuid}\nautostart=True\nrequested_target=x",
            PolicyExecution.AllowResponse(Allow($"uuid:{WorkUuid}"), System));
        Assert.Equal($"user=root\nresult=allow\ntarget=@dispvm:default-dvm\ntarget_uuid=@dispvm:uuid:{DvmUuid}\nautostart=False\nrequested_target=@dispvm",
            PolicyExecution.AllowResponse(Allow("@dispvm:default-dvm", "@dispvm", "root", autostart: false), System));
        foreach (var dom0 in new[] { "dom0", "@adminvm", "uuid:00000000-0000-0000-0000-000000000000" })
            Assert.Equal("user=DEFAULT\nresult=allow\ntarget=dom0\nautostart=True\nrequested_target=@adminvm", PolicyExecution.AllowResponse(Allow(dom0, "@adminvm"), System));
        Assert.Null(PolicyExecution.AllowResponse(Allow("gone"), System));
    }

    [Theory]
    [InlineData("source=work\nintended_target=personal\nservice_and_arg=qubes.Filecopy\n\n", "qubes.Filecopy", "+", false, false)]
    [InlineData("source=work\nintended_target=personal\nservice_and_arg=a.B+c+d\njust_evaluate=yes\nassume_yes_for_ask=no\n\n", "a.B", "+c+d", true, false)]
    [InlineData("source=work\nintended_target=personal\nservice_and_arg=a.B+\nassume_yes_for_ask=yes\n", "a.B", "+", false, true)]
    public void Requests_parse(string text, string service, string argument, bool justEvaluate, bool assumeYes)
    {
        var r = PolicySocketRequest.Parse(Encoding.ASCII.GetBytes(text), out var error);
        Assert.Null(error);
        Assert.Equal((service, argument, "work", "personal", justEvaluate, assumeYes),
            (r!.Request.Service, r.Request.Argument, r.Request.Source, r.Request.RequestedTarget, r.Options.JustEvaluate, r.Options.AssumeYesForAsk));
    }

    [Theory]
    [InlineData("source=w\nintended_target=p\nservice_and_arg=s\nx=1\n\n", "unknown argument x")]
    [InlineData("source=w\nsource=w\n\n", "duplicate argument source")]
    [InlineData("source=w\nintended_target=p\n\n", "required argument missing")]
    [InlineData("source=w\nintended_target=p\nservice_and_arg=s\njust_evaluate=1\n\n", "invalid bool value 1 for argument just_evaluate")]
    [InlineData("source\n\n", "line without '='")]
    [InlineData("source=wörk\n\n", "request is not ASCII")]
    public void Malformed_requests_are_refused(string text, string reason)
    {
        Assert.Null(PolicySocketRequest.Parse(Encoding.UTF8.GetBytes(text), out var error));
        Assert.Equal(reason, error);
    }

    [Fact]
    public void The_end_of_a_request_is_the_empty_line()
    {
        Assert.Equal(-1, PolicySocketRequest.EndOf("source=w\n"u8));
        Assert.Equal(10, PolicySocketRequest.EndOf("source=w\n\nrest"u8));
        Assert.Equal(1, PolicySocketRequest.EndOf("\n"u8));
    }

    [Fact]
    public void Resolutions_follow_the_callers_options()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"qa-exec-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "a.policy"), "s.Ask * * ask\ns.Allow * * allow\n");
            var engine = new FakePolicyEngine();
            var policy = engine.LoadDirectories([dir]);
            PolicyOutcome Run(string service, string target, PolicyCallOptions options) =>
                PolicyExecution.Run(engine, policy, null, PolicyRequest.Of(service, "work", target), System, options);

            var ask = Run("s.Ask", "personal", new());
            Assert.Equal(("result=deny", PolicyResult.Ask, "denied by the user a.policy:1"), (ask.Response, ask.Evaluated.Result, ask.Final.Reason));
            Assert.Equal("s.Ask not allowed from work: the resolution was \"ask\", but source domain has no GuiVM", ask.LogLines[0].Text);
            var quiet = Run("s.Ask", "personal", new(JustEvaluate: true));
            Assert.Equal(("result=deny", 0), (quiet.Response, quiet.LogLines.Length));
            Assert.StartsWith("user=DEFAULT\nresult=allow\ntarget=personal\n", Run("s.Ask", "personal", new(AssumeYesForAsk: true)).Response, StringComparison.Ordinal);
            Assert.Equal("result=allow", Run("s.Ask", "personal", new(JustEvaluate: true, AssumeYesForAsk: true)).Response);
            var evaluated = Run("s.Allow", "personal", new(JustEvaluate: true));
            Assert.Equal(("result=allow", 0), (evaluated.Response, evaluated.LogLines.Length));

            var loopback = Run("s.Allow", "work", new());
            Assert.Equal(("result=deny", "loopback qrexec connection not supported"), (loopback.Response, loopback.Final.Reason));
            Assert.Equal(["qrexec: s.Allow+: work -> work: allowed to work", "qrexec: s.Allow+: work -> work: denied: loopback qrexec connection not supported"],
                loopback.LogLines.Select(l => l.Text));

            var relayed = Run("s.Allow", "personal", new(RequestedSource: "personal"));
            Assert.Equal(("result=deny", "personal: requested source is only authorized for RemoteVM"), (relayed.Response, relayed.Final.Reason));

            var broken = PolicyExecution.Run(engine, null, new PolicySyntaxException("b.policy", 3, "bad"), PolicyRequest.Of("s.Allow", "work", "personal"), System, new());
            Assert.Equal(("result=deny", PolicyResult.ParseError, "b.policy:3: bad"), (broken.Response, broken.Final.Result, broken.Final.Reason));
            Assert.True(broken.LogLines[0].Error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
