using QubesActors.Core.Policy;
using Xunit;
using static QubesActors.Core.Tests.Policy.PolicyTestSystem;

namespace QubesActors.Core.Tests.Policy;

/// <summary>§2 grammar and §3 token validity, with upstream's messages and line numbers.</summary>
public sealed class PolicyParserTests
{
    private static void AssertError(string text, int line, string message)
    {
        var e = SyntaxError(text);
        Assert.Equal("test.policy", e.File);
        Assert.Equal(line, e.Line);
        Assert.Equal(message, e.Detail);
        Assert.Equal($"test.policy:{line}: {message}", e.Message);
    }

    private static PolicyRule Rule(string line) => Assert.Single(Load(line).Rules);

    [Theory]
    [InlineData("test.Service * @anyvm @anyvm")]
    [InlineData("test.Service *")]
    [InlineData("test.Service")]
    public void Fewer_than_five_fields(string line) => AssertError("\n" + line, 2, "wrong number of fields");

    [Fact]
    public void Fields_split_on_tabs_and_runs_of_spaces()
    {
        var rule = Rule("test.Service\t+arg \t @anyvm   @anyvm\tallow\ttarget=dom0");
        Assert.Equal("test.Service", rule.Service);
        Assert.Equal("+arg", rule.Argument);
        Assert.Equal(PolicyTokenKind.AnyVm, rule.Source.Kind);
        Assert.Equal(PolicyAction.Allow, rule.Action);
        Assert.Equal("dom0", rule.Redirect!.Text);
    }

    [Fact]
    public void Parameter_defaults_per_action()
    {
        var allow = Rule("s * @anyvm @anyvm allow");
        Assert.False(allow.Notify);
        Assert.True(allow.Autostart);
        Assert.Null(allow.User);
        var ask = Rule("s * @anyvm @anyvm ask");
        Assert.False(ask.Notify);
        Assert.True(ask.Autostart);
        var deny = Rule("s * @anyvm @anyvm deny");
        Assert.True(deny.Notify);
    }

    [Fact]
    public void All_parameters_are_read()
    {
        var ask = Rule("s * @anyvm @anyvm ask target=test-vm1 default_target=@dispvm user=root notify=yes autostart=no");
        Assert.Equal("test-vm1", ask.Redirect!.Text);
        Assert.Equal(PolicyTokenKind.DispVm, ask.DefaultTarget!.Kind);
        Assert.Equal("root", ask.User);
        Assert.True(ask.Notify);
        Assert.False(ask.Autostart);
        Assert.Equal(5, ask.Params.Length);
    }

    [Theory]
    [InlineData("s * @anyvm @anyvm allow # comment", "invalid action parameter syntax: '#'")]
    [InlineData("s * @anyvm @anyvm allow target", "invalid action parameter syntax: 'target'")]
    [InlineData("s * @anyvm @anyvm allow target=a target=b", "parameter given twice: 'target'")]
    [InlineData("s * @anyvm @anyvm deny target=test-vm1", "invalid parameters for action Deny: ['target=test-vm1']")]
    [InlineData("s * @anyvm @anyvm deny user=x notify=no", "invalid parameters for action Deny: ['user=x', 'notify=no']")]
    [InlineData("s * @anyvm @anyvm deny autostart=yes", "invalid parameters for action Deny: ['autostart=yes']")]
    [InlineData("s * @anyvm @anyvm allow default_target=x", "invalid parameters for action Allow: ['default_target=x']")]
    [InlineData("s * @anyvm @anyvm ask foo=bar", "invalid parameters for action Ask: ['foo=bar']")]
    [InlineData("s * @anyvm @anyvm allow notify=xx", "'notify' is 'xx', but can be only 'yes' or 'no'")]
    [InlineData("s * @anyvm @anyvm allow autostart=True", "'autostart' is 'True', but can be only 'yes' or 'no'")]
    [InlineData("s * @anyvm @anyvm deny autostart=maybe", "'autostart' is 'maybe', but can be only 'yes' or 'no'")]
    [InlineData("s * @anyvm @anyvm allow,target=dom0", "invalid action: allow,target=dom0")]
    [InlineData("s * @anyvm @anyvm Allow", "invalid action: Allow")]
    [InlineData("s * @anyvm @anyvm permit", "invalid action: permit")]
    [InlineData("s * @anyvm @default allow", "allow action for @default rule must specify target= option")]
    [InlineData("* +arg @anyvm @anyvm allow", "only * argument allowed for * service")]
    [InlineData("* + @anyvm @anyvm allow", "only * argument allowed for * service")]
    [InlineData("s arg @anyvm @anyvm allow", "argument 'arg' does not start with +")]
    [InlineData("s +a/b @anyvm @anyvm allow", "argument '+a/b' contains invalid characters: ('/',)")]
    [InlineData("s+x * @anyvm @anyvm allow", "service 's+x' contains invalid characters: ('+',)")]
    [InlineData("s!/ * @anyvm @anyvm allow", "service 's!/' contains invalid characters: ('!', '/')")]
    [InlineData("s * @anyvm @anyvm allow target=", "invalid empty redirect token")]
    public void Rule_errors(string line, string message) => AssertError("# first\n" + line, 2, message);

    [Fact]
    public void Ask_with_default_target_column_needs_nothing()
    {
        Assert.Equal(PolicyTokenKind.Default, Rule("s * @anyvm @default ask").Target.Kind);
        Assert.Equal("test-vm1", Rule("s * @anyvm @default allow target=test-vm1").Redirect!.Text);
    }

    [Fact]
    public void Empty_user_is_the_default_user() => Assert.Null(Rule("s * @anyvm @anyvm allow user=").User);

    [Fact]
    public void Parameter_values_may_contain_equals() =>
        Assert.Equal("a=b", Rule("s * @anyvm @anyvm allow user=a=b").User);

    // Every token in every column: the kind it parses to, or the error text (null = valid).
    public static TheoryData<string, PolicyTokenColumn, string?> TokenTable => new()
    {
        { "test-vm1", PolicyTokenColumn.Source, null },
        { "test-vm1", PolicyTokenColumn.Target, null },
        { "test-vm1", PolicyTokenColumn.Redirect, null },
        { "test-vm1", PolicyTokenColumn.IntendedTarget, null },
        { "uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", PolicyTokenColumn.Source, null },
        { "uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", PolicyTokenColumn.Target, null },
        { "uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", PolicyTokenColumn.Redirect, null },
        { "uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", PolicyTokenColumn.IntendedTarget, null },
        { "dom0", PolicyTokenColumn.Source, null },
        { "dom0", PolicyTokenColumn.Target, null },
        { "dom0", PolicyTokenColumn.Redirect, null },
        { "dom0", PolicyTokenColumn.IntendedTarget, null },
        { "@adminvm", PolicyTokenColumn.Source, null },
        { "@adminvm", PolicyTokenColumn.Target, null },
        { "@adminvm", PolicyTokenColumn.Redirect, null },
        { "@adminvm", PolicyTokenColumn.IntendedTarget, null },
        { "@anyvm", PolicyTokenColumn.Source, null },
        { "@anyvm", PolicyTokenColumn.Target, null },
        { "@anyvm", PolicyTokenColumn.Redirect, "invalid redirect token: '@anyvm'" },
        { "@anyvm", PolicyTokenColumn.IntendedTarget, "invalid intendedtarget token: '@anyvm'" },
        { "*", PolicyTokenColumn.Source, null },
        { "*", PolicyTokenColumn.Target, null },
        { "*", PolicyTokenColumn.Redirect, "invalid redirect token: '*'" },
        { "*", PolicyTokenColumn.IntendedTarget, "invalid intendedtarget token: '*'" },
        { "@default", PolicyTokenColumn.Source, "invalid source token: '@default'" },
        { "@default", PolicyTokenColumn.Target, null },
        { "@default", PolicyTokenColumn.Redirect, "invalid redirect token: '@default'" },
        { "@default", PolicyTokenColumn.IntendedTarget, null },
        { "@type:AppVM", PolicyTokenColumn.Source, null },
        { "@type:AppVM", PolicyTokenColumn.Target, null },
        { "@type:AppVM", PolicyTokenColumn.Redirect, "invalid redirect token: '@type:AppVM'" },
        { "@type:AppVM", PolicyTokenColumn.IntendedTarget, "invalid intendedtarget token: '@type:AppVM'" },
        { "@tag:t", PolicyTokenColumn.Source, null },
        { "@tag:t", PolicyTokenColumn.Target, null },
        { "@tag:t", PolicyTokenColumn.Redirect, "invalid redirect token: '@tag:t'" },
        { "@tag:t", PolicyTokenColumn.IntendedTarget, "invalid intendedtarget token: '@tag:t'" },
        { "@dispvm", PolicyTokenColumn.Source, "invalid source token: '@dispvm'" },
        { "@dispvm", PolicyTokenColumn.Target, null },
        { "@dispvm", PolicyTokenColumn.Redirect, null },
        { "@dispvm", PolicyTokenColumn.IntendedTarget, null },
        { "@dispvm:default-dvm", PolicyTokenColumn.Source, null },
        { "@dispvm:default-dvm", PolicyTokenColumn.Target, null },
        { "@dispvm:default-dvm", PolicyTokenColumn.Redirect, null },
        { "@dispvm:default-dvm", PolicyTokenColumn.IntendedTarget, null },
        { "@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21", PolicyTokenColumn.Target, null },
        { "@dispvm:uuid:f3e538bd-4427-4697-bed7-45ef3270df21", PolicyTokenColumn.IntendedTarget, null },
        { "@dispvm:@tag:t", PolicyTokenColumn.Source, null },
        { "@dispvm:@tag:t", PolicyTokenColumn.Target, null },
        { "@dispvm:@tag:t", PolicyTokenColumn.Redirect, "invalid redirect token: '@dispvm:@tag:t'" },
        { "@dispvm:@tag:t", PolicyTokenColumn.IntendedTarget, "invalid intendedtarget token: '@dispvm:@tag:t'" },
        { "@invalid", PolicyTokenColumn.Source, "invalid source token: '@invalid'" },
        { "@invalid", PolicyTokenColumn.Target, "invalid target token: '@invalid'" },
        { "@uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61", PolicyTokenColumn.Target,
            "invalid target token: '@uuid:c9024a97-9b15-46cc-8341-be9e1f8a9f61'" },
        { "@tag:", PolicyTokenColumn.Source, "invalid empty @tag: token: '@tag:'" },
        { "@tag:", PolicyTokenColumn.Target, "invalid empty @tag: token: '@tag:'" },
        { "@tag:", PolicyTokenColumn.Redirect, "invalid redirect token: '@tag:'" },
        { "@type:", PolicyTokenColumn.Target, "invalid empty @type: token: '@type:'" },
        { "@dispvm:", PolicyTokenColumn.Target, "invalid empty @dispvm: token: '@dispvm:'" },
        { "@dispvm:", PolicyTokenColumn.Redirect, "invalid empty @dispvm: token: '@dispvm:'" },
        { "@dispvm:", PolicyTokenColumn.IntendedTarget, "invalid empty @dispvm: token: '@dispvm:'" },
        { "@dispvm:@tag:", PolicyTokenColumn.Target, "invalid empty @dispvm:@tag: token: '@dispvm:@tag:'" },
        { "@dispvm:@foo", PolicyTokenColumn.Target, "invalid target token: '@dispvm:@foo'" },
        { "@type:@x", PolicyTokenColumn.Source, "invalid source token: '@type:@x'" },
        { "@ANYVM", PolicyTokenColumn.Source, "invalid source token: '@ANYVM'" },
        { "@anyvm'", PolicyTokenColumn.Source, "invalid source token: \"@anyvm'\"" },
        { "", PolicyTokenColumn.Redirect, "invalid empty redirect token" },
    };

    [Theory]
    [MemberData(nameof(TokenTable))]
    public void Token_validity_per_column(string token, PolicyTokenColumn column, string? error)
    {
        var parsed = PolicyToken.TryParse(token, column, out var actual);
        Assert.Equal(error, actual);
        Assert.Equal(error is null, parsed is not null);
    }

    [Theory]
    [InlineData("test-vm1", PolicyTokenKind.Name, "test-vm1")]
    [InlineData("*", PolicyTokenKind.Wildcard, "*")]
    [InlineData("@anyvm", PolicyTokenKind.AnyVm, "@anyvm")]
    [InlineData("@adminvm", PolicyTokenKind.AdminVm, "@adminvm")]
    [InlineData("@default", PolicyTokenKind.Default, "@default")]
    [InlineData("@type:AppVM", PolicyTokenKind.Type, "AppVM")]
    [InlineData("@tag:x", PolicyTokenKind.Tag, "x")]
    [InlineData("@dispvm", PolicyTokenKind.DispVm, "@dispvm")]
    [InlineData("@dispvm:dvm", PolicyTokenKind.DispVmTemplate, "dvm")]
    [InlineData("@dispvm:@tag:x", PolicyTokenKind.DispVmTag, "x")]
    public void Token_kinds(string text, PolicyTokenKind kind, string value)
    {
        var token = PolicyToken.TryParse(text, PolicyTokenColumn.Target, out _)!;
        Assert.Equal(kind, token.Kind);
        Assert.Equal(value, token.Value);
    }

    [Theory]
    [InlineData("s * @dispvm @anyvm allow", "invalid source token: '@dispvm'")]
    [InlineData("s * @default @anyvm allow", "invalid source token: '@default'")]
    [InlineData("s * @invalid @anyvm allow", "invalid source token: '@invalid'")]
    [InlineData("s * @tag: @anyvm allow", "invalid empty @tag: token: '@tag:'")]
    [InlineData("s * @anyvm @invalid allow", "invalid target token: '@invalid'")]
    [InlineData("s * @anyvm @anyvm allow target=@anyvm", "invalid redirect token: '@anyvm'")]
    [InlineData("s * @anyvm @anyvm allow target=*", "invalid redirect token: '*'")]
    [InlineData("s * @anyvm @anyvm allow target=@default", "invalid redirect token: '@default'")]
    [InlineData("s * @anyvm @anyvm allow target=@tag:x", "invalid redirect token: '@tag:x'")]
    [InlineData("s * @anyvm @anyvm allow target=@type:AppVM", "invalid redirect token: '@type:AppVM'")]
    [InlineData("s * @anyvm @anyvm ask default_target=@dispvm:@tag:x", "invalid redirect token: '@dispvm:@tag:x'")]
    public void Token_errors_in_rules(string line, string message) => AssertError(line, 1, message);

    [Fact]
    public void Source_is_checked_before_target_and_action()
    {
        AssertError("s * @invalid @invalid bogus", 1, "invalid source token: '@invalid'");
        AssertError("s * @anyvm @invalid bogus", 1, "invalid target token: '@invalid'");
        AssertError("s * @anyvm @anyvm bogus x", 1, "invalid action: bogus");
    }

    [Fact]
    public void Unknown_parameters_are_reported_before_bad_redirect_tokens() =>
        AssertError("s * @anyvm @anyvm allow target=@anyvm foo=1", 1,
            "invalid parameters for action Allow: ['target=@anyvm', 'foo=1']");

    [Theory]
    [InlineData("!include")]
    [InlineData("!include a b")]
    [InlineData("!include-dir")]
    [InlineData("!include-service s *")]
    [InlineData("!compat-4.0 x")]
    public void Directive_parameter_count(string line) => AssertError("\n\n" + line, 3, "invalid number of params");

    [Theory]
    [InlineData("!foo")]
    [InlineData("!include-services s * x")]
    [InlineData("!")]
    public void Unknown_directives(string line) => AssertError(line, 1, "invalid directive");

    [Fact]
    public void Indented_rules_comments_and_directives()
    {
        var policy = Load("  \t# c\n   s * @anyvm @anyvm allow   \n");
        Assert.Equal(2, Assert.Single(policy.Rules).Location.Line);
    }

    [Fact]
    public void Carriage_returns_count_as_line_breaks()
    {
        var policy = Load("# a\r\n# b\rs * @anyvm @anyvm allow\n");
        Assert.Equal(3, Assert.Single(policy.Rules).Location.Line);
    }

    [Fact]
    public void Any_service_any_argument()
    {
        var rule = Rule("* * @anyvm @anyvm deny");
        Assert.True(rule.AnyService);
        Assert.True(rule.AnyArgument);
    }

    [Fact]
    public void Error_lines_count_physical_lines_after_valid_rules() =>
        AssertError("s * @anyvm @anyvm allow\n# c\n\ns * @anyvm @anyvm allow\ns * x\n", 5, "wrong number of fields");
}
