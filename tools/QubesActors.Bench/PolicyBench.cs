using System.Collections.Immutable;
using System.Diagnostics;
using System.Text;
using QubesActors.Core.Policy;

namespace QubesActors.Bench;

/// <summary>
/// The compiled qrexec policy in process: a generated policy of N rules (many services, tags, types, names, a few
/// "*"-service rules), a generated system of Q qubes, single-threaded decisions after warm-up.
/// </summary>
public static class PolicyBench
{
    public static int Run(int ruleCount, int qubeCount, int decisions, int seed, string commandLine)
    {
        var random = new Random(seed);
        var system = GenerateSystem(qubeCount, random);
        var names = system.Domains.Keys.Where(n => n != "dom0").ToArray();
        var (text, services) = GeneratePolicy(ruleCount, names, random);

        var loadWatch = Stopwatch.StartNew();
        var policy = CompiledPolicy.Parse("90-bench.policy", text);
        loadWatch.Stop();

        var targets = names.Concat(["", "@default", "@dispvm", "@adminvm", "dom0", "@dispvm:dvm-0", "no-such-qube"]).ToArray();
        var requests = Enumerable.Range(0, 4096).Select(_ => new PolicyRequest(
            random.Next(10) == 0 ? "unknown.Service" + random.Next(50) : services[random.Next(services.Length)],
            random.Next(4) == 0 ? "+arg" + random.Next(5) : "+",
            names[random.Next(names.Length)],
            targets[random.Next(targets.Length)])).ToArray();

        // Warm-up (tiered JIT, the system index cache).
        for (var i = 0; i < Math.Max(200_000, decisions / 5); i++)
            policy.Evaluate(requests[i & 4095], system);

        var counts = new int[4];
        var latencies = new double[decisions];
        var asks = new bool[decisions];
        var tickToUs = 1_000_000.0 / Stopwatch.Frequency;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        for (var i = 0; i < decisions; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var d = policy.Evaluate(requests[i & 4095], system);
            latencies[i] = (Stopwatch.GetTimestamp() - start) * tickToUs;
            counts[(int)d.Result]++;
            asks[i] = d.Result == PolicyResult.Ask;
        }
        wall.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;

        // Throughput without the per-call timer.
        var batch = Stopwatch.StartNew();
        for (var i = 0; i < decisions; i++)
            policy.Evaluate(requests[i & 4095], system);
        batch.Stop();
        var perSecond = decisions / batch.Elapsed.TotalSeconds;

        var withoutAsk = latencies.Where((_, i) => !asks[i]).Order().ToArray();
        var askOnly = latencies.Where((_, i) => asks[i]).Order().ToArray();
        Array.Sort(latencies);
        double P(double p) => Stats.Percentile(latencies, p);
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "-";
        Report.Table($"policy: {policy.Count:N0} rules, {qubeCount:N0} qubes, {decisions:N0} decisions (single thread, after warm-up)",
            ["metric", "value"],
            [
                ["parse + compile", $"{Stats.F(loadWatch.Elapsed.TotalMilliseconds)} ms"],
                ["p50", $"{Stats.F(P(50), 2)} µs"],
                ["p99", $"{Stats.F(P(99), 2)} µs"],
                ["p99.9", $"{Stats.F(P(99.9), 2)} µs"],
                ["max", $"{Stats.F(latencies[^1], 2)} µs"],
                ["p50 / p99 allow+deny", $"{Stats.F(Stats.Percentile(withoutAsk, 50), 2)} / {Stats.F(Stats.Percentile(withoutAsk, 99), 2)} µs"],
                ["p50 / p99 ask", $"{Stats.F(Stats.Percentile(askOnly, 50), 2)} / {Stats.F(Stats.Percentile(askOnly, 99), 2)} µs"],
                ["decisions/s", Stats.F(perSecond, 0)],
                ["allow / deny / ask", $"{counts[0]:N0} / {counts[1]:N0} / {counts[2]:N0}"],
                ["CPU ms (timed loop)", Stats.F(cpu.TotalMilliseconds, 0)],
                ["load average (1 min)", load],
            ]);
        Report.JsonLine(new
        {
            bench = "policy", command = commandLine, rules = policy.Count, qubes = qubeCount, decisions,
            parse_ms = loadWatch.Elapsed.TotalMilliseconds, p50_us = P(50), p99_us = P(99), p999_us = P(99.9), max_us = latencies[^1],
            p99_no_ask_us = Stats.Percentile(withoutAsk, 99), p99_ask_us = Stats.Percentile(askOnly, 99),
            decisions_per_s = perSecond, allow = counts[0], deny = counts[1], ask = counts[2], cpu_ms = cpu.TotalMilliseconds, load1 = load,
        });
        return P(99) < 20 && perSecond >= 200_000 ? 0 : 1;
    }

    private static readonly string[] Types = ["AppVM", "AppVM", "AppVM", "TemplateVM", "StandaloneVM", "DispVM"];
    private static readonly string[] Tags = ["work", "personal", "vault", "anon-vm", "whonix-updatevm", "created-by-work", "audio", "print"];

    private static SystemInfo GenerateSystem(int count, Random random)
    {
        var domains = ImmutableSortedDictionary.CreateBuilder<string, SystemDomain>(StringComparer.Ordinal);
        domains["dom0"] = new SystemDomain("AdminVM", [], false, "dvm-0", "Running", Guid.Empty);
        for (var i = 0; i < 5; i++)
            domains[$"dvm-{i}"] = new SystemDomain("AppVM", ["dvm"], true, $"dvm-{i}", "Halted", Guid.NewGuid());
        for (var i = 0; domains.Count < count; i++)
        {
            var tags = Tags.Where(_ => random.Next(4) == 0).ToImmutableArray();
            domains[$"qube-{i}"] = new SystemDomain(Types[random.Next(Types.Length)], tags, false,
                random.Next(8) == 0 ? null : $"dvm-{random.Next(5)}", random.Next(3) == 0 ? "Running" : "Halted", Guid.NewGuid(),
                Internal: random.Next(50) == 0);
        }
        return new SystemInfo(domains.ToImmutable());
    }

    private static (string Text, string[] Services) GeneratePolicy(int ruleCount, string[] names, Random random)
    {
        var services = Enumerable.Range(0, Math.Max(1, ruleCount / 20)).Select(i => $"svc{i % 17}.Service{i}").ToArray();
        string Source() => random.Next(5) switch
        {
            0 => "@anyvm",
            1 => "@tag:" + Tags[random.Next(Tags.Length)],
            2 => "@type:" + Types[random.Next(Types.Length)],
            _ => names[random.Next(names.Length)],
        };
        string Target() => random.Next(7) switch
        {
            0 => "@anyvm",
            1 => "@tag:" + Tags[random.Next(Tags.Length)],
            2 => "@dispvm",
            3 => "@default",
            4 => "@adminvm",
            _ => names[random.Next(names.Length)],
        };
        var text = new StringBuilder();
        var written = 0;
        void Line(string line)
        {
            text.AppendLine(line);
            written++;
        }
        Line("# generated benchmark policy");
        // A few "*"-service rules up front, as users write them to block a qube entirely.
        Line("* * @tag:quarantine @anyvm deny");
        Line("* * @anyvm @tag:quarantine deny notify=no");
        var perService = Math.Max(3, (ruleCount - 4) / services.Length);
        foreach (var (service, index) in services.Select((s, i) => (s, i)))
        {
            // The last service takes the remainder so the policy has exactly ruleCount rules.
            var count = index == services.Length - 1 ? ruleCount - 1 - written : perService;
            for (var r = 0; r < count - 2; r++)
            {
                var argument = random.Next(4) == 0 ? "+arg" + random.Next(5) : "*";
                var target = Target();
                var action = random.Next(3) switch { 0 => "deny", 1 => "ask", _ => "allow" };
                var parameters = action switch
                {
                    "allow" when target == "@default" => " target=" + names[random.Next(names.Length)],
                    "allow" => random.Next(4) == 0 ? " user=root" : "",
                    "ask" => random.Next(3) == 0 ? " default_target=" + names[random.Next(names.Length)] : "",
                    _ => random.Next(2) == 0 ? " notify=no" : "",
                };
                Line($"{service} {argument} {Source()} {target} {action}{parameters}");
            }
            Line($"{service} * @anyvm @dispvm allow");
            Line($"{service} * @anyvm @anyvm deny");
        }
        Line("* * @anyvm dom0 deny");
        Line("* * @anyvm @anyvm deny");
        return (text.ToString(), services);
    }
}
