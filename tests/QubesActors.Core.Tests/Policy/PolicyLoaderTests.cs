using QubesActors.Core.Policy;
using Xunit;
using static QubesActors.Core.Tests.Policy.PolicyTestSystem;

namespace QubesActors.Core.Tests.Policy;

/// <summary>§1: files, names, order, merging, every include directive, errors inside included files.</summary>
public sealed class PolicyLoaderTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("policy-test-").FullName;
    private string Run => Path.Combine(root, "run");
    private string Etc => Path.Combine(root, "etc");

    public PolicyLoaderTests()
    {
        Directory.CreateDirectory(Run);
        Directory.CreateDirectory(Etc);
    }

    public void Dispose() => Directory.Delete(root, recursive: true);

    private void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private CompiledPolicy LoadBoth(string? compat = null) => CompiledPolicy.LoadDirectories([Run, Etc], compat);

    [Fact]
    public void Files_are_merged_by_name_runtime_first_and_sorted()
    {
        Write(Path.Combine(Etc, "90-default.policy"), "s * @anyvm @anyvm deny");
        Write(Path.Combine(Etc, "30-user.policy"), "s +etc @anyvm @anyvm deny");
        Write(Path.Combine(Run, "30-user.policy"), "s +run @anyvm @anyvm deny");
        Write(Path.Combine(Run, "50-run.policy"), "s +fifty @anyvm @anyvm deny");
        var policy = LoadBoth();
        Assert.Equal(["+run", "+fifty", "*"], policy.Rules.Select(r => r.Argument));
        Assert.Equal(Path.Combine(Run, "30-user.policy"), policy.Rules[0].Location.File);
        Assert.Equal(3, policy.Count);
    }

    [Fact]
    public void Only_policy_files_not_starting_with_a_dot_are_loaded()
    {
        Write(Path.Combine(Etc, "a.policy"), "s +a @anyvm @anyvm deny");
        Write(Path.Combine(Etc, ".hidden.policy"), "garbage");
        Write(Path.Combine(Etc, "b.policy.rpmsave"), "garbage");
        Write(Path.Combine(Etc, "README"), "garbage");
        Write(Path.Combine(Etc, "UPPER.txt"), "garbage");
        Directory.CreateDirectory(Path.Combine(Etc, "dir.policy"));
        Write(Path.Combine(Etc, "include", "x"), "garbage");
        Assert.Equal("+a", Assert.Single(LoadBoth().Rules).Argument);
    }

    [Theory]
    [InlineData("Upper.policy")]
    [InlineData("a b.policy")]
    [InlineData("a+b.policy")]
    public void An_invalid_file_name_fails_the_whole_load(string name)
    {
        Write(Path.Combine(Etc, "10-ok.policy"), "s * @anyvm @anyvm allow");
        Write(Path.Combine(Run, name), "s * @anyvm @anyvm allow");
        var e = Assert.Throws<PolicySyntaxException>(() => LoadBoth());
        Assert.Equal($"invalid filename: {Path.Combine(Run, name)}", e.Detail);
    }

    [Fact]
    public void Sorting_is_by_code_point()
    {
        foreach (var name in new[] { "b.policy", "a-1.policy", "a.policy", "a_1.policy", "10.policy", "9.policy" })
            Write(Path.Combine(Etc, name), $"s +{name.Replace(".policy", "").Replace("_", "u")} @anyvm @anyvm deny");
        Assert.Equal(["+10", "+9", "+a-1", "+a", "+au1", "+b"], LoadBoth().Rules.Select(r => r.Argument));
    }

    [Fact]
    public void Missing_directory_is_skipped() =>
        Assert.Equal(0, CompiledPolicy.LoadDirectories([Path.Combine(root, "nope"), Etc]).Count);

    [Fact]
    public void Include_relative_to_the_top_level_file_directory_also_when_nested()
    {
        Write(Path.Combine(Etc, "30-user.policy"), "# x\n!include include/first\ns +after @anyvm @anyvm deny");
        Write(Path.Combine(Etc, "include", "first"), "s +first @anyvm @anyvm deny\n!include include/second");
        Write(Path.Combine(Etc, "include", "second"), "s +second @anyvm @anyvm deny");
        var policy = LoadBoth();
        Assert.Equal(["+first", "+second", "+after"], policy.Rules.Select(r => r.Argument));
        Assert.Equal(new PolicyLocation(Path.Combine(Etc, "include", "second"), 1), policy.Rules[1].Location);
    }

    [Fact]
    public void Include_absolute_path()
    {
        Write(Path.Combine(root, "elsewhere"), "s +abs @anyvm @anyvm deny");
        Write(Path.Combine(Etc, "30-user.policy"), $"!include {Path.Combine(root, "elsewhere")}");
        Assert.Equal("+abs", Assert.Single(LoadBoth().Rules).Argument);
    }

    [Fact]
    public void Missing_include_is_an_error_at_the_directive()
    {
        Write(Path.Combine(Etc, "30-user.policy"), "\n\n!include include/missing");
        var e = Assert.Throws<PolicySyntaxException>(() => LoadBoth());
        Assert.Equal(Path.Combine(Etc, "30-user.policy"), e.File);
        Assert.Equal(3, e.Line);
        Assert.Equal($"not a file: {Path.Combine(Etc, "include", "missing")}", e.Detail);
    }

    [Fact]
    public void Error_inside_an_included_file_names_that_file_and_line()
    {
        Write(Path.Combine(Etc, "30-user.policy"), "!include include/bad");
        Write(Path.Combine(Etc, "include", "bad"), "s * @anyvm @anyvm allow\n\ns * @anyvm @anyvm allow # no");
        var e = Assert.Throws<PolicySyntaxException>(() => LoadBoth());
        Assert.Equal(Path.Combine(Etc, "include", "bad"), e.File);
        Assert.Equal(3, e.Line);
        Assert.Equal("invalid action parameter syntax: '#'", e.Detail);
    }

    [Fact]
    public void Include_loop_fails_cleanly()
    {
        Write(Path.Combine(Etc, "30-user.policy"), "!include include/loop");
        Write(Path.Combine(Etc, "include", "loop"), "!include include/loop");
        Assert.Throws<PolicySyntaxException>(() => LoadBoth());
    }

    [Fact]
    public void Include_dir_loads_valid_policy_files_sorted()
    {
        Write(Path.Combine(Etc, "30-user.policy"), "!include-dir extra\ns +after @anyvm @anyvm deny");
        Write(Path.Combine(Etc, "extra", "b.policy"), "s +b @anyvm @anyvm deny");
        Write(Path.Combine(Etc, "extra", "a.policy"), "s +a @anyvm @anyvm deny\n!include include/x");
        Write(Path.Combine(Etc, "extra", "ignored"), "garbage");
        Write(Path.Combine(Etc, "include", "x"), "s +x @anyvm @anyvm deny");
        Assert.Equal(["+a", "+x", "+b", "+after"], LoadBoth().Rules.Select(r => r.Argument));
    }

    [Fact]
    public void Include_dir_errors()
    {
        Write(Path.Combine(Etc, "30-user.policy"), "!include-dir nope");
        Assert.Equal($"not a directory: {Path.Combine(Etc, "nope")}", Assert.Throws<PolicySyntaxException>(() => LoadBoth()).Detail);
        Write(Path.Combine(Etc, "30-user.policy"), "!include-dir extra");
        Write(Path.Combine(Etc, "extra", "Bad.policy"), "");
        Assert.StartsWith("invalid filename: ", Assert.Throws<PolicySyntaxException>(() => LoadBoth()).Detail);
    }

    [Fact]
    public void Include_service_old_syntax()
    {
        Write(Path.Combine(Etc, "90-admin.policy"), "!include-service admin.vm.List * include/admin-ro\n!include-service s +arg include/old");
        Write(Path.Combine(Etc, "include", "admin-ro"), "");
        Write(Path.Combine(Etc, "include", "old"), """
            # old comment
            $anyvm $dispvm allow
            test-vm1 $default allow,target=test-vm2,user=root
            $tag:x $anyvm deny notify=no
            $include:include/nested
            !include include/nested
            """);
        Write(Path.Combine(Etc, "include", "nested"), "test-vm3 test-vm2 ask,default_target=test-vm2");
        var rules = LoadBoth().Rules;
        Assert.Equal(5, rules.Count);
        Assert.All(rules, r => Assert.Equal(("s", "+arg"), (r.Service, r.Argument)));
        Assert.Equal(PolicyTokenKind.DispVm, rules[0].Target.Kind);
        Assert.Equal(("test-vm2", "root"), (rules[1].Redirect!.Text, rules[1].User));
        Assert.False(rules[2].Notify);
        Assert.Equal(new PolicyLocation(Path.Combine(Etc, "include", "nested"), 1), rules[3].Location);
    }

    [Fact]
    public void Include_service_errors()
    {
        var policy = (string main, string old) => CompiledPolicy.Parse("m.policy", main, p => p == "old" ? old : null);
        Assert.Equal("only * argument allowed for * service",
            Assert.Throws<PolicySyntaxException>(() => policy("!include-service * +x old", "")).Detail);
        Assert.Equal("no such policy file: 'missing'",
            Assert.Throws<PolicySyntaxException>(() => policy("!include-service s * missing", "")).Detail);
        var fields = Assert.Throws<PolicySyntaxException>(() => policy("!include-service s * old", "\n@anyvm"));
        Assert.Equal(("old", 2, "wrong number of fields"), (fields.File, fields.Line, fields.Detail));
        Assert.Equal("wrong number of fields", Assert.Throws<PolicySyntaxException>(() => policy("!include-service s * old", "a b")).Detail);
        Assert.Equal("invalid directive",
            Assert.Throws<PolicySyntaxException>(() => policy("!include-service s * old", "!include-dir x")).Detail);
        Assert.Equal("allow action for @default rule must specify target= option",
            Assert.Throws<PolicySyntaxException>(() => policy("!include-service s * old", "$anyvm $default allow")).Detail);
    }

    [Fact]
    public void Compat40_reads_old_files_with_implicit_denies()
    {
        var compat = Path.Combine(root, "compat");
        Write(Path.Combine(compat, "qubes.Foo"), "$anyvm $anyvm ask");
        Write(Path.Combine(compat, "qubes.Foo+b"), "test-vm1 test-vm2 allow");
        Write(Path.Combine(compat, "qubes.Foo+a"), "test-vm1 test-vm3 allow");
        Write(Path.Combine(compat, "qubes.Bar+x"), "$anyvm dom0 allow");
        Write(Path.Combine(compat, "qubes.Bar+x.rpmsave"), "garbage");
        Write(Path.Combine(compat, ".hidden"), "garbage");
        Write(Path.Combine(compat, "bad name"), "garbage");
        Write(Path.Combine(Etc, "35-compat.policy"), "!compat-4.0");
        var rules = LoadBoth(compat).Rules;
        Assert.Equal(
            ["qubes.Bar+x allow", "qubes.Bar+x deny", "qubes.Bar+x deny",
             "qubes.Foo+a allow", "qubes.Foo+a deny", "qubes.Foo+a deny",
             "qubes.Foo+b allow", "qubes.Foo+b deny", "qubes.Foo+b deny",
             "qubes.Foo* ask"],
            rules.Select(r => $"{r.Service}{r.Argument} {r.Action.ToString().ToLowerInvariant()}"));
        Assert.Equal(new PolicyLocation(Path.Combine(compat, "qubes.Bar+x"), 0), rules[1].Location);
        Assert.Equal("@adminvm", rules[2].Target.Text);
        Assert.Equal(0, LoadBoth(null).Count); // no compat directory: no-op
    }

    [Fact]
    public void In_memory_parse_sorts_and_checks_names()
    {
        var policy = CompiledPolicy.Parse([("b.policy", "s +b @anyvm @anyvm deny"), ("/x/a.policy", "s +a @anyvm @anyvm deny"),
            ("a.policy", "s +dup @anyvm @anyvm deny")]);
        Assert.Equal(["+a", "+b"], policy.Rules.Select(r => r.Argument));
        Assert.Equal("invalid filename: Bad.policy",
            Assert.Throws<PolicySyntaxException>(() => CompiledPolicy.Parse([("Bad.policy", "")])).Detail);
        Assert.Equal("!include-dir is not supported for an in-memory policy",
            Assert.Throws<PolicySyntaxException>(() => CompiledPolicy.Parse("a.policy", "!include-dir x")).Detail);
        Assert.Equal("no such policy file: 'include/x'",
            Assert.Throws<PolicySyntaxException>(() => CompiledPolicy.Parse("a.policy", "!include include/x")).Detail);
        Assert.Equal(0, CompiledPolicy.Parse("a.policy", "!compat-4.0").Count);
    }

    [Fact]
    public void Invalid_utf8_fails_the_load()
    {
        File.WriteAllBytes(Path.Combine(Etc, "a.policy"), [0x73, 0x20, 0xff, 0xfe]);
        Assert.Throws<PolicySyntaxException>(() => LoadBoth());
    }

    [Fact]
    public void Loaded_policy_evaluates_with_full_path_locations()
    {
        Write(Path.Combine(Etc, "90-default.policy"), "test.Service * @anyvm @anyvm deny");
        var d = LoadBoth().Evaluate(new("test.Service", "+", "test-vm1", "test-vm2"), Default);
        Assert.Equal($"denied by policy {Path.Combine(Etc, "90-default.policy")}:1", d.Reason);
    }
}
