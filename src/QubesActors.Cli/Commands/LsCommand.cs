using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm ls (qvm-ls, docs/qubes-semantics.md §8): one row per qube, columns by format or <c>--fields</c>, aligned as
/// <c>column -t</c>; filters, sorting, <c>--tree</c>, <c>--raw-data</c>, <c>--raw-list</c> and <c>-o json</c>.
/// </summary>
public static class LsCommand
{
    public static readonly IReadOnlyDictionary<string, string[]> Formats = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["simple"] = ["NAME", "STATE", "CLASS", "LABEL", "TEMPLATE", "NETVM"],
        ["network"] = ["NAME", "STATE", "NETVM", "IP", "IPBACK", "GATEWAY"],
        ["kernel"] = ["NAME", "STATE", "CLASS", "TEMPLATE", "KERNEL", "KERNELOPTS"],
        ["full"] = ["NAME", "STATE", "CLASS", "LABEL", "QID", "XID", "UUID"],
        ["prefs"] = ["NAME", "LABEL", "TEMPLATE", "NETVM", "VCPUS", "INITIALMEM", "MAXMEM", "VIRT-MODE"],
        ["disk"] = ["NAME", "STATE", "DISK", "PRIV-CURR", "PRIV-MAX", "PRIV-USED", "ROOT-CURR", "ROOT-MAX", "ROOT-USED"],
    };

    /// <summary>Columns that are not a property of the same name.</summary>
    private static readonly Dictionary<string, string> PropertyOf = new(StringComparer.Ordinal)
    {
        ["CLASS"] = "klass",
        ["IPBACK"] = "visible_ip",
        ["INITIALMEM"] = "memory",
    };

    private static readonly string[] DiskColumns = ["DISK", "PRIV-CURR", "PRIV-MAX", "PRIV-USED", "ROOT-CURR", "ROOT-MAX", "ROOT-USED"];

    public static Command Create(QvmContext context)
    {
        var names = new Argument<string[]>("VMNAME") { Description = "Qubes to list (shell globs allowed); default all", Arity = ArgumentArity.ZeroOrMore };
        var format = new Option<string>("--format", "-o") { Description = "Format: simple, network, kernel, full, prefs, disk, json", DefaultValueFactory = _ => "simple" };
        format.AcceptOnlyFromAmong([.. Formats.Keys, "json"]);
        var network = new Option<bool>("-n") { Description = "Same as --format network" };
        var kernel = new Option<bool>("-k") { Description = "Same as --format kernel" };
        var disk = new Option<bool>("-d") { Description = "Same as --format disk" };
        var fields = new Option<string?>("--fields", "-O") { Description = "Comma-separated columns (any property name, FLAGS, MEMORY, DISK, ...)" };
        var tree = new Option<bool>("--tree", "-t") { Description = "Show clients under their netvm" };
        var rawData = new Option<bool>("--raw-data") { Description = "No header, '|'-separated cells" };
        var rawList = new Option<bool>("--raw-list") { Description = "Names only, one per line" };
        var running = new Option<bool>("--running") { Description = "Running qubes (also with --paused/--halted: any of them)" };
        var paused = new Option<bool>("--paused") { Description = "Paused or suspended qubes" };
        var halted = new Option<bool>("--halted") { Description = "Halted qubes" };
        var klass = new Option<string[]>("--class") { Description = "Only qubes of this class (repeatable)" };
        var label = new Option<string[]>("--label") { Description = "Only qubes with this label (repeatable)" };
        var tags = new Option<string[]>("--tags") { Description = "Only qubes with any of these tags", AllowMultipleArgumentsPerToken = true };
        var excludeTags = new Option<string[]>("--exclude-tags") { Description = "Leave out qubes with any of these tags", AllowMultipleArgumentsPerToken = true };
        var templateSource = new Option<string[]>("--template-source") { Description = "Only qubes based on this template (repeatable)" };
        var netvmIs = new Option<string[]>("--netvm-is") { Description = "Only qubes with this netvm (repeatable)" };
        var isInternal = YesNo("--internal", "Only internal (y) or non-internal (n) qubes");
        var serviceVm = YesNo("--servicevm", "Only service qubes (y) or others (n)");
        var pendingUpdate = new Option<bool>("--pending-update") { Description = "Only qubes with updates available" };
        var features = new Option<string[]>("--features") { Description = "FEATURE=VALUE that must hold (empty VALUE: unset)", AllowMultipleArgumentsPerToken = true };
        var prefs = new Option<string[]>("--prefs") { Description = "PROPERTY=VALUE that must hold", AllowMultipleArgumentsPerToken = true };
        var sort = new Option<string?>("--sort") { Description = "Sort by this column (default NAME)" };
        var reverse = new Option<bool>("--reverse") { Description = "Reverse the sort" };
        var ignoreCase = new Option<bool>("--ignore-case") { Description = "Sort ignoring case" };

        var command = new Command("ls", "List qubes and their state (qvm-ls)");
        command.Arguments.Add(names);
        foreach (var option in new Option[] { format, network, kernel, disk, fields, tree, rawData, rawList, running, paused, halted, klass, label, tags, excludeTags,
                     templateSource, netvmIs, isInternal, serviceVm, pendingUpdate, features, prefs, sort, reverse, ignoreCase })
            command.Options.Add(option);

        command.SetQvmAction(context, async inv =>
        {
            var formatName = inv.Get(network) ? "network" : inv.Get(kernel) ? "kernel" : inv.Get(disk) ? "disk" : inv.Get(format)!;
            var json = formatName == "json";
            var columns = inv.Get(fields) is { Length: > 0 } f
                ? f.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Header).ToArray()
                : Formats[json ? "simple" : formatName];
            if (columns.Length == 0)
                throw new QvmUsageException("--fields needs at least one column");
            var sortColumn = inv.Get(sort) is { Length: > 0 } s ? Header(s) : "NAME";

            var all = await inv.Api.ListAsync(inv.Ct).ConfigureAwait(false);
            var selected = SelectByName(all, inv.Get(names) ?? []);

            var want = new Needs(
                Features: [.. Enumerable.Empty<string>()
                    .Concat(columns.Contains("FLAGS") ? ["internal"] : [])
                    .Concat(inv.Get(isInternal) is not null ? ["internal"] : [])
                    .Concat(inv.Get(serviceVm) is not null ? ["servicevm"] : [])
                    .Concat(inv.Get(pendingUpdate) ? ["updates-available"] : [])
                    .Concat((inv.Get(features) ?? []).Select(kv => SplitPair(kv, "--features").Key))],
                Tags: (inv.Get(tags)?.Length ?? 0) + (inv.Get(excludeTags)?.Length ?? 0) > 0,
                Memory: columns.Contains("MEMORY"),
                Disk: columns.Any(DiskColumns.Contains));
            var rows = await LoadAsync(inv, selected, want).ConfigureAwait(false);

            rows = Filter(rows, inv.Get(running), inv.Get(paused), inv.Get(halted), inv.Get(klass) ?? [], inv.Get(label) ?? [], inv.Get(tags) ?? [],
                inv.Get(excludeTags) ?? [], inv.Get(templateSource) ?? [], inv.Get(netvmIs) ?? [], inv.Get(isInternal), inv.Get(serviceVm),
                inv.Get(pendingUpdate), [.. (inv.Get(features) ?? []).Select(kv => SplitPair(kv, "--features"))],
                [.. (inv.Get(prefs) ?? []).Select(kv => SplitPair(kv, "--prefs"))]);

            var comparer = inv.Get(ignoreCase) ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;
            rows = [.. rows.OrderBy(r => r, new RowComparer(sortColumn, comparer)).ThenBy(r => r.Entry.Name, StringComparer.Ordinal)];
            if (inv.Get(reverse))
                rows.Reverse();
            var ordered = inv.Get(tree) ? TreeOrder(rows) : [.. rows.Select(r => (Row: r, Depth: 0))];

            if (inv.Get(rawList))
            {
                foreach (var (row, _) in ordered)
                    inv.Out.WriteCells(row.Entry.Name);
                return Qvm.ExitOk;
            }
            if (json)
            {
                inv.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var (row, _) in ordered)
                    {
                        w.WriteStartObject();
                        foreach (var column in columns)
                        {
                            var key = column.ToLowerInvariant().Replace('-', '_');
                            if (row.Value(column) is { Length: > 0 } v)
                                w.WriteString(key, v);
                            else
                                w.WriteNull(key);
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
                return Qvm.ExitOk;
            }
            if (inv.Get(rawData))
            {
                foreach (var (row, _) in ordered)
                    inv.Out.WriteCells(string.Join('|', columns.Select(c => row.Value(c) ?? "")));
                return Qvm.ExitOk;
            }
            var table = new List<IReadOnlyList<Cell>> { columns.Select(c => new Cell(c)).ToArray() };
            foreach (var (row, depth) in ordered)
                table.Add(columns.Select(c => CellOf(row, c, depth)).ToArray());
            AlignedTable.Write(inv.Out, table);
            return Qvm.ExitOk;
        });
        return command;
    }

    private static Option<string?> YesNo(string name, string description)
    {
        var option = new Option<string?>(name) { Description = description };
        option.AcceptOnlyFromAmong("y", "n", "yes", "no");
        return option;
    }

    /// <summary>Column header of a field name: upper case, '_' as '-'.</summary>
    public static string Header(string field) => field.ToUpperInvariant().Replace('_', '-');

    private static KeyValuePair<string, string> SplitPair(string text, string option)
    {
        var eq = text.IndexOf('=');
        return eq <= 0 ? throw new QvmUsageException($"{option}: expected NAME=VALUE, got '{text}'") : new(text[..eq], text[(eq + 1)..]);
    }

    private static Cell CellOf(Row row, string column, int depth)
    {
        var text = row.Value(column) is { Length: > 0 } v ? v : "-";
        if (column == "NAME" && depth > 0)
            text = new string(' ', 2 * (depth - 1)) + "└─" + text;
        return column is "NAME" or "LABEL" ? new Cell(text, LabelStyles.For(row.Prop("label") ?? "")) : new Cell(text);
    }

    private static IReadOnlyList<QubeEntry> SelectByName(IReadOnlyList<QubeEntry> all, string[] patterns)
    {
        if (patterns.Length == 0)
            return all;
        var selected = new List<QubeEntry>();
        foreach (var pattern in patterns)
        {
            Invocation.RejectOption(pattern);
            var regex = new Regex("^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".").Replace(@"\[", "[").Replace(@"\]", "]") + "$");
            var matches = all.Where(q => regex.IsMatch(q.Name)).ToList();
            if (matches.Count == 0 && !pattern.AsSpan().ContainsAny("*?["))
                throw new QvmUsageException($"no such domain: '{pattern}'");
            selected.AddRange(matches.Where(m => !selected.Contains(m)));
        }
        return selected;
    }

    private sealed record Needs(string[] Features, bool Tags, bool Memory, bool Disk);

    private static async Task<List<Row>> LoadAsync(Invocation inv, IReadOnlyList<QubeEntry> qubes, Needs needs)
    {
        var rows = new Row[qubes.Count];
        var diskSupported = needs.Disk;
        await Parallel.ForEachAsync(Enumerable.Range(0, qubes.Count), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = inv.Ct }, async (i, ct) =>
        {
            var entry = qubes[i];
            IReadOnlyDictionary<string, PropertyValue> props;
            try
            {
                props = await inv.Api.GetAllAsync(entry.Name, ct).ConfigureAwait(false);
            }
            catch (QubesApiException e) when (e.ClassName == "QubesVMNotFoundError")
            {
                // Removed between List and GetAll: list what List said.
                props = new Dictionary<string, PropertyValue>();
            }
            var features = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var feature in needs.Features.Distinct())
                features[feature] = await inv.Api.FeatureAsync(entry.Name, feature, ct).ConfigureAwait(false);
            IReadOnlyList<string> tags = needs.Tags ? QubesApi.Lines(await inv.Api.CallAsync("admin.vm.tag.List", entry.Name, ct: ct).ConfigureAwait(false)) : [];
            string? memory = null;
            if (needs.Memory)
            {
                var state = await inv.Api.CallAsync("admin.vm.CurrentState", entry.Name, ct: ct).ConfigureAwait(false);
                var mem = state.Split(' ').FirstOrDefault(p => p.StartsWith("mem=", StringComparison.Ordinal))?[4..];
                memory = long.TryParse(mem, CultureInfo.InvariantCulture, out var kib) ? (kib / 1024).ToString(CultureInfo.InvariantCulture) : null;
            }
            var volumes = new Dictionary<string, string>(StringComparer.Ordinal);
            if (Volatile.Read(ref diskSupported))
            {
                try
                {
                    foreach (var volume in new[] { "private", "root" })
                        foreach (var line in QubesApi.Lines(await inv.Api.CallAsync("admin.vm.volume.Info", entry.Name, volume, ct: ct).ConfigureAwait(false)))
                            if (line.IndexOf('=') is var eq and > 0)
                                volumes[volume + "." + line[..eq]] = line[(eq + 1)..];
                }
                catch (QubesApiException e) when (e.IsNoSuchMethod)
                {
                    // This qubesd has no storage API: disk columns stay empty.
                    Volatile.Write(ref diskSupported, false);
                }
                catch (QubesApiException)
                {
                    // dom0 and qubes without such a volume have no figures.
                }
            }
            rows[i] = new Row(entry, props, features, tags, memory, volumes);
        }).ConfigureAwait(false);
        return [.. rows];
    }

    private static List<Row> Filter(List<Row> rows, bool running, bool paused, bool halted, string[] classes, string[] labels, string[] tags,
        string[] excludeTags, string[] templates, string[] netvms, string? isInternal, string? serviceVm, bool pendingUpdate,
        KeyValuePair<string, string>[] features, KeyValuePair<string, string>[] prefs)
    {
        static bool Yes(string answer) => answer is "y" or "yes";
        return [.. rows.Where(r =>
            (!(running || paused || halted)
             || (running && r.Entry.State is "Running" or "Transient")
             || (paused && r.Entry.State is "Paused" or "Suspended")
             || (halted && r.Entry.State == "Halted"))
            && (classes.Length == 0 || classes.Contains(r.Entry.Class))
            && (labels.Length == 0 || labels.Contains(r.Prop("label")))
            && (tags.Length == 0 || tags.Any(r.Tags.Contains))
            && !excludeTags.Any(r.Tags.Contains)
            && (templates.Length == 0 || templates.Contains(r.Prop("template")))
            && (netvms.Length == 0 || netvms.Contains(r.Prop("netvm") ?? ""))
            && (isInternal is null || Yes(isInternal) == r.FeatureOn("internal"))
            && (serviceVm is null || Yes(serviceVm) == r.FeatureOn("servicevm"))
            && (!pendingUpdate || r.FeatureOn("updates-available"))
            && features.All(kv => (r.Features.GetValueOrDefault(kv.Key) ?? "") == kv.Value)
            && prefs.All(kv => (r.Prop(kv.Key) ?? "") == kv.Value))];
    }

    /// <summary>Depth-first from the qubes without a (listed) netvm; clients follow their netvm in sort order.</summary>
    private static List<(Row Row, int Depth)> TreeOrder(List<Row> rows)
    {
        var names = rows.Select(r => r.Entry.Name).ToHashSet(StringComparer.Ordinal);
        var children = rows.Where(r => r.Prop("netvm") is { Length: > 0 } n && names.Contains(n) && n != r.Entry.Name)
            .ToLookup(r => r.Prop("netvm")!, StringComparer.Ordinal);
        var result = new List<(Row, int)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Visit(Row row, int depth)
        {
            if (!seen.Add(row.Entry.Name))
                return;
            result.Add((row, depth));
            foreach (var child in children[row.Entry.Name])
                Visit(child, depth + 1);
        }
        foreach (var root in rows.Where(r => !(r.Prop("netvm") is { Length: > 0 } n && names.Contains(n) && n != r.Entry.Name)))
            Visit(root, 0);
        // A netvm loop (refused by qubesd, but the CLI must not lose rows): whatever is left, flat.
        foreach (var row in rows.Where(r => !seen.Contains(r.Entry.Name)))
            Visit(row, 0);
        return result;
    }

    private sealed class RowComparer(string column, StringComparer comparer) : IComparer<Row>
    {
        public int Compare(Row? x, Row? y)
        {
            var a = x!.Value(column) ?? "";
            var b = y!.Value(column) ?? "";
            // Numeric columns (QID, MEMORY, ...) sort as numbers.
            if (long.TryParse(a, CultureInfo.InvariantCulture, out var na) && long.TryParse(b, CultureInfo.InvariantCulture, out var nb))
                return na.CompareTo(nb);
            return comparer.Compare(a, b);
        }
    }

    private sealed record Row(QubeEntry Entry, IReadOnlyDictionary<string, PropertyValue> Props, IReadOnlyDictionary<string, string?> Features,
        IReadOnlyList<string> Tags, string? Memory, IReadOnlyDictionary<string, string> Volumes)
    {
        public string? Prop(string name) => Props.TryGetValue(name, out var p) ? p.Value : null;

        public bool FeatureOn(string feature) => Features.GetValueOrDefault(feature) is { Length: > 0 };

        public string? Value(string column) => column switch
        {
            "NAME" => Entry.Name,
            "STATE" => Entry.State,
            "CLASS" => Entry.Class,
            "FLAGS" => Flags(),
            "MEMORY" => Memory,
            "DISK" => Sum("private.usage", "root.usage"),
            "PRIV-CURR" => Mib("private.usage"),
            "PRIV-MAX" => Mib("private.size"),
            "PRIV-USED" => Percent("private"),
            "ROOT-CURR" => Mib("root.usage"),
            "ROOT-MAX" => Mib("root.size"),
            "ROOT-USED" => Percent("root"),
            _ => Prop(PropertyOf.GetValueOrDefault(column) ?? column.ToLowerInvariant().Replace('-', '_')),
        };

        private long? Bytes(string key) => Volumes.TryGetValue(key, out var v) && long.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : null;
        private string? Mib(string key) => Bytes(key) is { } b ? (b / (1024 * 1024)).ToString(CultureInfo.InvariantCulture) : null;

        private string? Sum(params string[] keys) =>
            keys.Select(Bytes).Where(b => b is not null).ToList() is { Count: > 0 } parts ? (parts.Sum()!.Value / (1024 * 1024)).ToString(CultureInfo.InvariantCulture) : null;

        private string? Percent(string volume) => Bytes(volume + ".usage") is { } used && Bytes(volume + ".size") is { } size and > 0
            ? (used * 100 / size).ToString(CultureInfo.InvariantCulture) + "%"
            : null;

        /// <summary>qvm-ls FLAGS: type (upper case if HVM), power, then U N R i D A, '-' for each that does not apply.</summary>
        private string Flags()
        {
            var type = Entry.Class switch
            {
                "AdminVM" => '0',
                "TemplateVM" => 't',
                "AppVM" => 'a',
                "DispVM" => 'd',
                "StandaloneVM" => 's',
                _ => '?',
            };
            if (Prop("virt_mode") == "hvm")
                type = char.ToUpperInvariant(type);
            var power = Entry.State switch
            {
                "Running" => 'r',
                "Transient" => 't',
                "Paused" => 'p',
                "Suspended" => 's',
                "Halting" => 'h',
                "Dying" => 'd',
                "Crashed" => 'c',
                "Halted" => '-',
                _ => '?',
            };
            bool On(string prop) => Prop(prop) == "True";
            return string.Concat(type, power, On("updateable") ? 'U' : '-', On("provides_network") ? 'N' : '-', On("installed_by_rpm") ? 'R' : '-',
                FeatureOn("internal") ? 'i' : '-', On("debug") ? 'D' : '-', On("autostart") ? 'A' : '-');
        }
    }
}
