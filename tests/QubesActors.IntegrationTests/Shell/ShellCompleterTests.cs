using System.CommandLine;
using QubesActors.Cli.Shell;
using Xunit;

namespace QubesActors.IntegrationTests.Shell;

/// <summary>
/// Completion against a tree shaped like qvm's (the real commands are written elsewhere and land later): the
/// completer must find commands, aliases, options and argument roles in the tree itself, never in a list.
/// </summary>
public sealed class ShellCompleterTests
{
    private readonly FakeCompletionData _data = new();

    internal static RootCommand Tree()
    {
        var root = new RootCommand("test qvm");
        root.Options.Add(new Option<string>("--socket") { Recursive = true });

        var format = new Option<string>("--format");
        format.AcceptOnlyFromAmong("table", "json");
        var ls = new Command("ls", "list") { new Option<bool>("--running", "-r"), format };
        ls.Aliases.Add("list");
        root.Subcommands.Add(ls);

        root.Subcommands.Add(new Command("start") { new Argument<string[]>("VMNAME") { Arity = ArgumentArity.OneOrMore } });
        root.Subcommands.Add(new Command("shutdown") { new Argument<string>("qube"), new Option<bool>("--wait"), new Option<int>("--timeout") });
        root.Subcommands.Add(new Command("create")
        {
            new Argument<string>("VMNAME"),
            new Option<string>("--template", "-t"),
            new Option<string>("--label", "-l"),
            new Option<string>("--class", "-C"),
        });
        root.Subcommands.Add(new Command("prefs")
        {
            new Argument<string>("qube"),
            new Argument<string?>("property") { Arity = ArgumentArity.ZeroOrOne },
            new Argument<string?>("value") { Arity = ArgumentArity.ZeroOrOne },
        });
        root.Subcommands.Add(new Command("global-prefs")
        {
            new Argument<string?>("property") { Arity = ArgumentArity.ZeroOrOne },
            new Argument<string?>("value") { Arity = ArgumentArity.ZeroOrOne },
        });
        var features = new Command("features");
        features.Subcommands.Add(new Command("get") { new Argument<string>("qube"), new Argument<string>("feature") });
        features.Subcommands.Add(new Command("set") { new Argument<string>("qube"), new Argument<string>("feature"), new Argument<string>("value") });
        root.Subcommands.Add(features);
        root.Subcommands.Add(new Command("events"));
        root.Subcommands.Add(new Command("help") { new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore } });
        root.Subcommands.Add(new Command("secret") { Hidden = true });
        return root;
    }

    private IReadOnlyList<string> Complete(string line, RootCommand? root = null) =>
        new ShellCompleter(root ?? Tree(), _data).Complete(line, line.Length).Candidates;

    [Fact]
    public void First_word_offers_every_visible_command_and_alias()
    {
        var all = Complete("");
        Assert.Equal(new[] { "events", "features", "global-prefs", "help", "list", "ls", "prefs", "shutdown", "start", "create" }.Order(StringComparer.Ordinal), all);
        Assert.DoesNotContain("secret", all);
        Assert.Empty(_data.Calls);
    }

    [Fact]
    public void First_word_is_filtered_by_its_prefix() => Assert.Equal(["start"], Complete("st"));

    [Fact]
    public void New_commands_complete_without_being_listed_anywhere()
    {
        var root = Tree();
        root.Subcommands.Add(new Command("pause") { new Argument<string>("qube") });
        Assert.Equal(["pause"], Complete("pa", root));
        Assert.Contains("work", Complete("pause ", root));
    }

    [Theory]
    [InlineData("start ")]
    [InlineData("shutdown ")]
    [InlineData("prefs ")]
    [InlineData("features get ")]
    [InlineData("start work ")]
    public void Qube_positions_offer_qube_names(string line) => Assert.Equal(_data.Qubes.Order(StringComparer.Ordinal), Complete(line));

    [Fact]
    public void Qube_names_are_filtered_by_prefix() => Assert.Equal(["sys-firewall", "sys-net"], Complete("start sys-"));

    [Fact]
    public void A_position_past_the_arguments_offers_nothing() => Assert.Empty(Complete("shutdown work "));

    [Fact]
    public void Options_of_the_command_and_recursive_ones_of_its_parents()
    {
        Assert.Equal(["--help", "--socket", "--timeout", "--wait"], Complete("shutdown --"));
        Assert.Equal(["--running"], Complete("list --r"));
        Assert.Contains("-r", Complete("ls -"));
    }

    [Fact]
    public void A_flag_takes_no_value_but_a_valued_option_does()
    {
        // After the flag --wait, the next word is the qube again; after --timeout it is the timeout.
        Assert.Contains("work", Complete("shutdown --wait "));
        Assert.Empty(Complete("shutdown --timeout "));
        Assert.Contains("work", Complete("shutdown --timeout 5 "));
    }

    [Theory]
    [InlineData("create --template ")]
    [InlineData("create -t ")]
    [InlineData("create new --template ")]
    public void Qube_valued_options_offer_qube_names(string line) => Assert.Contains("debian-13", Complete(line));

    [Fact]
    public void Option_equals_value_completes_after_the_equals_sign() =>
        Assert.Equal(["--template=debian-13"], Complete("create --template=deb"));

    [Fact]
    public void The_new_name_of_create_and_clone_is_not_completed()
    {
        var root = Tree();
        root.Subcommands.Add(new Command("clone") { new Argument<string>("VMNAME"), new Argument<string>("NEW_VMNAME") { HelpName = "VMNAME" } });
        Assert.Empty(Complete("create ", root));
        Assert.Contains("work", Complete("clone ", root));
        Assert.Empty(Complete("clone work ", root));
    }

    [Fact]
    public void Label_and_class_options_offer_labels_and_classes()
    {
        Assert.Equal(["black", "blue"], Complete("create x --label b"));
        Assert.Equal(["AppVM"], Complete("create x --class A"));
    }

    [Fact]
    public void Values_System_CommandLine_knows_are_offered() => Assert.Equal(["json", "table"], Complete("ls --format "));

    [Fact]
    public void A_global_option_value_before_the_command_is_skipped() => Assert.Equal(["start"], Complete("--socket /tmp/s st"));

    [Fact]
    public void Subcommands_after_their_parent() => Assert.Equal(["get", "set"], Complete("features "));

    [Fact]
    public void Prefs_property_names_come_from_the_qube()
    {
        Assert.Equal(["netvm"], Complete("prefs work net"));
        Assert.Contains("props work", _data.Calls);
        Assert.Empty(Complete("prefs nosuch "));
    }

    [Fact]
    public void Prefs_values_follow_the_property_type()
    {
        Assert.Equal(_data.Qubes.Order(StringComparer.Ordinal), Complete("prefs work netvm "));
        Assert.Equal(["debian-13"], Complete("prefs work template de"));
        Assert.Equal(["black", "blue", "green", "red"], Complete("prefs work label "));
        Assert.Equal(["False", "True"], Complete("prefs work autostart "));
        Assert.Equal(["400"], Complete("prefs work memory "));
        Assert.Empty(Complete("prefs work kernelopts "));
        Assert.Empty(Complete("prefs work nosuch "));
    }

    [Fact]
    public void Global_prefs_complete_global_properties_and_their_values()
    {
        Assert.Equal(["check_updates_vm", "clockvm"], Complete("global-prefs c"));
        Assert.Equal(["sys-firewall", "sys-net"], Complete("global-prefs clockvm sys"));
        Assert.Equal(["False", "True"], Complete("global-prefs check_updates_vm "));
    }

    [Fact]
    public void Prefs_roles_come_from_positions_when_argument_names_say_nothing()
    {
        var root = new RootCommand();
        root.Subcommands.Add(new Command("prefs")
        {
            new Argument<string>("a"),
            new Argument<string?>("b") { Arity = ArgumentArity.ZeroOrOne },
            new Argument<string?>("c") { Arity = ArgumentArity.ZeroOrOne },
        });
        Assert.Contains("work", Complete("prefs ", root));
        Assert.Equal(["netvm"], Complete("prefs work ne", root));
        Assert.Equal(["False", "True"], Complete("prefs work autostart ", root));
    }

    [Fact]
    public void Help_completes_command_names() => Assert.Equal(["shutdown", "start"], Complete("help s"));

    [Fact]
    public void The_replaced_span_is_the_whole_word_under_the_cursor()
    {
        const string line = "start wo rest";
        var result = new ShellCompleter(Tree(), _data).Complete(line, 8);
        Assert.Equal((6, 8, "wo"), (result.Start, result.End, result.Word));
        Assert.Equal(["work"], result.Candidates);
        var mid = new ShellCompleter(Tree(), _data).Complete("start wo", 7);
        Assert.Equal((6, 8, "w"), (mid.Start, mid.End, mid.Word));
    }

    [Fact]
    public void A_quoted_word_is_completed_on_its_unquoted_text()
    {
        var result = new ShellCompleter(Tree(), _data).Complete("start 'wo", 9);
        Assert.Equal(["work"], result.Candidates);
        Assert.Equal(6, result.Start);
    }

    [Fact]
    public void The_daemon_source_completes_nothing_when_qubesd_is_unreachable()
    {
        var data = new DaemonCompletionData(() => new QubesActors.AdminApi.Client.AdminClient("/nonexistent/qubesd.sock"));
        var completer = new ShellCompleter(Tree(), data);
        Assert.Empty(completer.Complete("start ", 6).Candidates);
        Assert.Empty(completer.Complete("prefs work ", 11).Candidates);
        Assert.Equal(DaemonCompletionData.StandardLabels.Order(StringComparer.Ordinal), completer.Complete("create x --label ", 17).Candidates);
    }

    [Theory]
    [InlineData("VMNAME", ValueRole.Qube)]
    [InlineData("<qube>", ValueRole.Qube)]
    [InlineData("--netvm", ValueRole.Qube)]
    [InlineData("default-dispvm", ValueRole.Qube)]
    [InlineData("default_template", ValueRole.Qube)]
    [InlineData("PROPERTY", ValueRole.Property)]
    [InlineData("value", ValueRole.PropertyValue)]
    [InlineData("--label", ValueRole.Label)]
    [InlineData("class", ValueRole.QubeClass)]
    [InlineData("name", ValueRole.None)]
    [InlineData("feature", ValueRole.None)]
    public void Roles_from_names(string name, ValueRole role) => Assert.Equal(role, ShellCompleter.RoleOf(name));
}
