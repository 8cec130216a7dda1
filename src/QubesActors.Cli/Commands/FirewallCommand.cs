using System.CommandLine;
using System.Globalization;
using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Errors;
using QubesActors.Core.Firewall;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm firewall (qvm-firewall, §4): <c>VM [list]</c> table or <c>--raw</c> API lines, <c>VM add [--before N] RULE</c>,
/// <c>VM del --rule-no N | RULE</c>, <c>VM reset</c>, <c>--reload</c>. Rules are checked with the same parser qubesd
/// uses before anything is sent; changes are a Get, an edit and a Set of the whole list.
/// </summary>
public static class FirewallCommand
{
    public static Command Create(QvmContext context)
    {
        var vm = new Argument<string>("VMNAME") { Description = "The qube" };
        var action = new Argument<string>("ACTION") { Description = "list (default), add, del or reset", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "list" };
        action.AcceptOnlyFromAmong("list", "add", "del", "reset");
        var rule = new Argument<string[]>("RULE")
        {
            Description = "key=value words (action= dsthost= proto= dstports= icmptype= specialtarget= expire= comment=), or positional: action [dsthost [proto [dstports|icmptype]]]",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var raw = new Option<bool>("--raw") { Description = "List rules in the API form, one per line" };
        var reload = new Option<bool>("--reload", "-r") { Description = "Make the netvm reload the rules" };
        var before = new Option<int?>("--before") { Description = "add: insert before rule number N (from 0)" };
        var ruleNo = new Option<int?>("--rule-no") { Description = "del: the rule number (from 0)" };
        var output = Qvm.OutputOption();
        var command = new Command("firewall", "Show or change a qube's outbound firewall (qvm-firewall)");
        command.Arguments.Add(vm);
        command.Arguments.Add(action);
        command.Arguments.Add(rule);
        foreach (var option in new Option[] { raw, reload, before, ruleNo, output })
            command.Options.Add(option);
        command.SetQvmAction(context, async inv =>
        {
            var qube = (await inv.ResolveAsync(inv.Get(vm)!).ConfigureAwait(false)).Name;
            var words = inv.Get(rule) ?? [];
            var verb = inv.Get(action)!;
            if (verb is "list" or "reset" && words.Length > 0)
                throw new QvmUsageException($"{verb} takes no RULE");
            switch (verb)
            {
                case "add":
                {
                    var newRule = ParseRule(words);
                    var rules = await GetAsync(inv, qube).ConfigureAwait(false);
                    var at = inv.Get(before) ?? rules.Count;
                    if (at < 0 || at > rules.Count)
                        throw new QvmUsageException($"--before {at}: there are {rules.Count} rules");
                    rules.Insert(at, newRule);
                    await SetAsync(inv, qube, rules).ConfigureAwait(false);
                    break;
                }
                case "del":
                {
                    var rules = await GetAsync(inv, qube).ConfigureAwait(false);
                    if (inv.Get(ruleNo) is { } n)
                    {
                        if (words.Length > 0)
                            throw new QvmUsageException("give either --rule-no or a RULE");
                        if (n < 0 || n >= rules.Count)
                            throw new QvmUsageException($"no rule number {n} (there are {rules.Count})");
                        rules.RemoveAt(n);
                    }
                    else
                    {
                        var target = ParseRule(words).ToApiString();
                        var index = rules.FindIndex(r => r.ToApiString() == target);
                        if (index < 0)
                            throw new QvmRuntimeException("no such rule");
                        rules.RemoveAt(index);
                    }
                    await SetAsync(inv, qube, rules).ConfigureAwait(false);
                    break;
                }
                case "reset":
                    await SetAsync(inv, qube, [new FirewallRule(FirewallAction.Accept)]).ConfigureAwait(false);
                    break;
                default:
                    if (inv.Get(reload))
                        break;
                    Show(inv, output, await GetAsync(inv, qube).ConfigureAwait(false), inv.Get(raw));
                    break;
            }
            if (inv.Get(reload))
                await inv.Api.CallAsync("admin.vm.firewall.Reload", qube, ct: inv.Ct).ConfigureAwait(false);
            return Qvm.ExitOk;
        });
        return command;
    }

    private static async Task<List<FirewallRule>> GetAsync(Invocation inv, string qube)
    {
        var text = await inv.Api.CallAsync("admin.vm.firewall.Get", qube, ct: inv.Ct).ConfigureAwait(false);
        try
        {
            return [.. FirewallRuleSet.ParseRules(text)];
        }
        catch (QubesError e)
        {
            throw new QvmRuntimeException($"unreadable rules from qubesd: {e.Message}");
        }
    }

    private static Task SetAsync(Invocation inv, string qube, IEnumerable<FirewallRule> rules) =>
        inv.Api.CallAsync("admin.vm.firewall.Set", qube, payload: FirewallRuleSet.FormatRules(rules), ct: inv.Ct);

    /// <summary>A rule from the command line, validated by the shared parser (so errors come before any call).</summary>
    public static FirewallRule ParseRule(string[] words)
    {
        if (words.Length == 0)
            throw new QvmUsageException("a RULE is needed");
        var pairs = new List<string>();
        if (!words[0].Contains('=', StringComparison.Ordinal))
        {
            // Positional form: action [dsthost [proto [dstports|icmptype]]].
            if (words.Length > 4)
                throw new QvmUsageException("positional rule: action [dsthost [proto [dstports|icmptype]]]");
            pairs.Add("action=" + words[0]);
            if (words.Length > 1)
                pairs.Add("dsthost=" + words[1]);
            if (words.Length > 2)
                pairs.Add("proto=" + words[2]);
            if (words.Length > 3)
                pairs.Add((words[2] == "icmp" ? "icmptype=" : "dstports=") + words[3]);
        }
        else
        {
            string? comment = null;
            for (var i = 0; i < words.Length; i++)
            {
                if (words[i].StartsWith("comment=", StringComparison.Ordinal))
                {
                    // The comment takes the rest of the words, as it must be last on the API line.
                    comment = string.Join(' ', words[i..]);
                    break;
                }
                var word = words[i];
                // The CLI takes expire as +SECONDS from now, too.
                if (word.StartsWith("expire=+", StringComparison.Ordinal) && long.TryParse(word["expire=+".Length..], CultureInfo.InvariantCulture, out var seconds))
                    word = "expire=" + (DateTimeOffset.UtcNow.ToUnixTimeSeconds() + seconds).ToString(CultureInfo.InvariantCulture);
                if (word.StartsWith("dstports=", StringComparison.Ordinal) && !word.Contains('-', StringComparison.Ordinal))
                    word += "-" + word["dstports=".Length..];
                pairs.Add(word);
            }
            if (comment is not null)
                pairs.Add(comment);
        }
        var line = string.Join(' ', pairs);
        try
        {
            return FirewallRule.Parse(line);
        }
        catch (QubesError e)
        {
            throw new QvmUsageException(e.Message);
        }
    }

    private static void Show(Invocation inv, Option<string> output, List<FirewallRule> rules, bool raw)
    {
        var now = DateTimeOffset.UtcNow;
        if (inv.Json(output))
        {
            inv.WriteJson(w =>
            {
                w.WriteStartArray();
                foreach (var r in rules)
                {
                    w.WriteStartObject();
                    w.WriteString("action", r.Action.Api());
                    if (r.DstHost is { } h)
                        w.WriteString(h.ApiKey, h.ApiValue);
                    if (r.Proto is { } p)
                        w.WriteString("proto", p.Api());
                    if (r.DstPorts is { } ports)
                        w.WriteString("dstports", ports.ToString());
                    if (r.IcmpType is { } icmp)
                        w.WriteNumber("icmptype", icmp);
                    if (r.SpecialTarget is { } t)
                        w.WriteString("specialtarget", t.Api());
                    if (r.Expire is { } e)
                        w.WriteNumber("expire", e.ToUnixTimeSeconds());
                    if (r.Comment is { } c)
                        w.WriteString("comment", c);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return;
        }
        if (raw)
        {
            foreach (var r in rules)
                inv.Out.WriteCells(RawLine(r));
            return;
        }
        var table = new List<IReadOnlyList<Cell>>
        {
            new Cell[] { "NO", "ACTION", "HOST", "PROTOCOL", "PORT(S)", "SPECIAL TARGET", "ICMP TYPE", "EXPIRE", "COMMENT" },
        };
        for (var i = 0; i < rules.Count; i++)
        {
            var r = rules[i];
            table.Add(new Cell[]
            {
                i.ToString(CultureInfo.InvariantCulture),
                r.Action.Api(),
                r.DstHost?.ApiValue ?? "-",
                r.Proto?.Api() ?? "-",
                r.DstPorts is { } ports ? (ports.First == ports.Last ? ports.First.ToString(CultureInfo.InvariantCulture) : ports.ToString()) : "-",
                r.SpecialTarget?.Api() ?? "-",
                r.IcmpType?.ToString(CultureInfo.InvariantCulture) ?? "-",
                r.Expire is { } e ? "+" + Math.Max(0, (long)(e - now).TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s" : "-",
                r.Comment ?? "-",
            });
        }
        AlignedTable.Write(inv.Out, table);
    }

    /// <summary>Wire spelling of the rule enums: their names in lower case (accept, tcp, dns).</summary>
    private static string Api(this Enum value) => value.ToString().ToLowerInvariant();

    /// <summary>qvm-firewall --raw key order: action proto dsthost dstports icmptype specialtarget expire comment.</summary>
    private static string RawLine(FirewallRule r)
    {
        var parts = new List<string> { "action=" + r.Action.Api() };
        if (r.Proto is { } p)
            parts.Add("proto=" + p.Api());
        if (r.DstHost is { } h)
            parts.Add(h.ToApiString());
        if (r.DstPorts is { } ports)
            parts.Add("dstports=" + ports);
        if (r.IcmpType is { } icmp)
            parts.Add("icmptype=" + icmp.ToString(CultureInfo.InvariantCulture));
        if (r.SpecialTarget is { } t)
            parts.Add("specialtarget=" + t.Api());
        if (r.Expire is { } e)
            parts.Add("expire=" + e.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        if (r.Comment is { } c)
            parts.Add("comment=" + c);
        return string.Join(' ', parts);
    }
}
