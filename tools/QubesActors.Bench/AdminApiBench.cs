using System.Diagnostics;
using System.Globalization;
using QubesActors.AdminApi.Client;
using QubesActors.AdminApi.Wire;

namespace QubesActors.Bench;

/// <summary>
/// The Admin API as a client sees it: a real qubesd process (the build output next to this program) on a temp state dir
/// (SQLite, simulated backend, the default layout), N AppVMs created through the socket, then one connection per call
/// (as qubesadmin does) for admin.vm.List, admin.vm.property.GetAll and admin.vm.Start + admin.vm.Shutdown+wait.
/// </summary>
public static class AdminApiBench
{
    private const string Dom0 = "dom0";

    /// <summary>One measured phase; <paramref name="Rated"/> false for the Start and Shutdown rows, whose calls share a phase with the other.</summary>
    private sealed record Row(string Call, int Concurrency, int Calls, double Seconds, Samples Samples, double DaemonCpuMs, double ClientCpuMs, double Load, string Goal, bool Rated = true)
    {
        public double Rate => Rated ? Calls / Seconds : double.NaN;
    }

    public static async Task<int> RunAsync(int qubes, int[] concurrencies, int reads, int lists, int cycles, string commandLine, IReadOnlyList<string>? daemonEnvironment = null)
    {
        Console.WriteLine($"# adminapi: qubesd process, {qubes} AppVMs + the default layout, SQLite, simulated backend; concurrency {string.Join(',', concurrencies)}");
        Console.WriteLine($"# command: {commandLine}");
        if (daemonEnvironment is { Count: > 0 })
            Console.WriteLine($"# qubesd environment: {string.Join(' ', daemonEnvironment)}");
        var stateDir = Path.Combine(Path.GetTempPath(), $"qubes-bench-api-{Environment.ProcessId}-{Guid.NewGuid():N}"[..^20]);
        Directory.CreateDirectory(stateDir);
        var rows = new List<Row>();
        var errors = new List<string>();
        var exit = 0;
        try
        {
            await using var daemon = await DaemonProcess.StartAsync(stateDir, daemonEnvironment ?? []);
            var client = new AdminClient(daemon.SocketPath);
            await daemon.WaitForRunningAsync(client, "sys-firewall");

            // Population through the socket, 16 at a time: also a figure (create is a journal write).
            var create = await MeasureAsync(daemon, "admin.vm.Create.AppVM", 16, qubes, errors,
                i => client.CallAsync("admin.vm.Create.AppVM", Dom0, payload: $"name={Commands.NameOf(i)} label=red"));
            rows.Add(create);
            var listed = (await client.CallAsync("admin.vm.List", Dom0)).OkText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            Console.Error.WriteLine($"  created {qubes} qubes in {create.Seconds:0.0} s; admin.vm.List has {listed} lines");
            if (listed < qubes)
                throw new InvalidOperationException($"admin.vm.List lists {listed} qubes, expected at least {qubes}");

            var target = Commands.NameOf(qubes / 2);
            Func<int, Task<AdminResponse>> list = _ => client.CallAsync("admin.vm.List", Dom0);
            Func<int, Task<AdminResponse>> getAll = _ => client.CallAsync("admin.vm.property.GetAll", target);
            var scratch = new List<string>();
            // Warm-up (JIT on both sides, connection paths, one start/shutdown cycle per concurrency used later): not reported.
            foreach (var c in concurrencies)
            {
                await MeasureAsync(daemon, "warm-up", c, Math.Max(50, lists / 10), scratch, list);
                await MeasureAsync(daemon, "warm-up", c, Math.Max(200, reads / 10), scratch, getAll);
                await CyclesAsync(daemon, client, c, Math.Min(qubes, Math.Max(c, 16)), scratch);
            }
            if (scratch.Count > 0)
                throw new InvalidOperationException("warm-up failed: " + scratch[0]);

            foreach (var c in concurrencies)
            {
                // The latency goals are for one call (1 client); with 16 in flight on 2 CPUs a call also waits for the
                // others (Little's law: 16 / 10,000 per s = 1.6 ms), so 16 clients carry the throughput goal only.
                rows.Add(await MeasureAsync(daemon, "admin.vm.List", c, lists, errors, list) with { Goal = c == 1 ? "p50 < 10 ms" : "" });
                rows.Add(await MeasureAsync(daemon, "admin.vm.property.GetAll", c, reads, errors, getAll) with { Goal = c == 1 ? "p50 < 1 ms" : c >= 16 ? ">= 10,000 calls/s" : "" });
                var (start, shutdown, cycle) = await CyclesAsync(daemon, client, c, Math.Min(qubes, cycles), errors);
                rows.AddRange([start, shutdown, cycle]);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(stateDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        Report.Table($"adminapi ({qubes} AppVMs in a qubesd process, SQLite, simulated backend; one connection per call; latency = connect to EOF as the client sees it)",
            ["call", "clients", "calls", "seconds", "calls/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "qubesd cpu ms/call", "client cpu ms/call", "loadavg", "goal"],
            rows.Select(r => new[]
            {
                r.Call, r.Concurrency.ToString(CultureInfo.InvariantCulture), r.Calls.ToString(CultureInfo.InvariantCulture), Stats.F(r.Seconds, 2), Stats.F(r.Rate, 0),
                Stats.F(r.Samples.Percentile(50), 2), Stats.F(r.Samples.Percentile(90), 2), Stats.F(r.Samples.Percentile(99), 2), Stats.F(r.Samples.Percentile(100), 2),
                r.Samples.Errors.ToString(CultureInfo.InvariantCulture), Stats.F(r.DaemonCpuMs / r.Calls, 3), Stats.F(r.ClientCpuMs / r.Calls, 3), Stats.F(r.Load, 2), Verdict(r),
            }));
        Console.WriteLine($"(both processes share {Environment.ProcessorCount} CPUs; cpu ms/call = process CPU time (all threads) per call; loadavg = 1-minute load average at the end of the phase)");
        foreach (var e in errors.Take(5))
            Console.WriteLine($"  error: {e}");
        foreach (var r in rows)
        {
            Report.JsonLine(new
            {
                bench = "adminapi", qubes, call = r.Call, clients = r.Concurrency, calls = r.Calls, seconds = Math.Round(r.Seconds, 4),
                calls_per_s = r.Rated ? Math.Round(r.Rate, 1) : (double?)null, p50_ms = Math.Round(r.Samples.Percentile(50), 3), p90_ms = Math.Round(r.Samples.Percentile(90), 3),
                p99_ms = Math.Round(r.Samples.Percentile(99), 3), max_ms = Math.Round(r.Samples.Percentile(100), 3), errors = r.Samples.Errors,
                qubesd_cpu_ms_per_call = r.Rated ? Math.Round(r.DaemonCpuMs / r.Calls, 4) : (double?)null, client_cpu_ms_per_call = r.Rated ? Math.Round(r.ClientCpuMs / r.Calls, 4) : (double?)null,
                loadavg_1m = r.Load, goal = r.Goal.Length > 0 ? r.Goal : null, goal_met = r.Goal.Length > 0 ? Verdict(r) == "MET" : (bool?)null, command = commandLine,
            });
            if (r.Samples.Errors > 0 || Verdict(r) == "MISSED")
                exit = 1;
        }
        return exit;
    }

    private static string Verdict(Row r)
    {
        if (r.Goal.Length == 0)
            return "";
        var p50 = r.Samples.Percentile(50);
        var met = r.Call switch
        {
            "admin.vm.List" => p50 < 10,
            "admin.vm.property.GetAll" => r.Concurrency == 1 ? p50 < 1 : r.Rate >= 10_000,
            _ => true,
        };
        return met ? "MET" : "MISSED";
    }

    /// <summary>Start then Shutdown+wait of qubes 0..count-1, each client taking the next qube; three rows: start, shutdown, the pair.</summary>
    private static async Task<(Row Start, Row Shutdown, Row Cycle)> CyclesAsync(DaemonProcess daemon, AdminClient client, int concurrency, int count, List<string> errors)
    {
        var start = new Samples("admin.vm.Start");
        var shutdown = new Samples("admin.vm.Shutdown+wait");
        var cycle = new Samples("Start + Shutdown+wait (2 calls)");
        var (seconds, daemonCpu, clientCpu) = await TimedAsync(daemon, () => Parallel.RunAsync(count, concurrency, async i =>
        {
            var name = Commands.NameOf(i);
            var clock = Stopwatch.StartNew();
            Record(start, await client.CallAsync("admin.vm.Start", name), clock.Elapsed.TotalMilliseconds, errors, name);
            var half = clock.Elapsed.TotalMilliseconds;
            Record(shutdown, await client.CallAsync("admin.vm.Shutdown", name, "wait"), clock.Elapsed.TotalMilliseconds - half, errors, name);
            cycle.Add(clock.Elapsed.TotalMilliseconds);
        }));
        cycle.Errors = start.Errors + shutdown.Errors;
        var load = Child.LoadAverage();
        // The pair row carries the rate (both calls counted) and the CPU; the single-call rows only their latency.
        return (new Row(start.Name, concurrency, count, seconds, start, double.NaN, double.NaN, load, "", Rated: false),
            new Row(shutdown.Name, concurrency, count, seconds, shutdown, double.NaN, double.NaN, load, "", Rated: false),
            new Row(cycle.Name, concurrency, count * 2, seconds, cycle, daemonCpu, clientCpu, load, ""));
    }

    private static async Task<Row> MeasureAsync(DaemonProcess daemon, string name, int concurrency, int count, List<string> errors, Func<int, Task<AdminResponse>> call)
    {
        var samples = new Samples(name);
        var (seconds, daemonCpu, clientCpu) = await TimedAsync(daemon, () => Parallel.RunAsync(count, concurrency, async i =>
        {
            var clock = Stopwatch.StartNew();
            var response = await call(i);
            Record(samples, response, clock.Elapsed.TotalMilliseconds, errors, i.ToString(CultureInfo.InvariantCulture));
        }));
        return new Row(name, concurrency, count, seconds, samples, daemonCpu, clientCpu, Child.LoadAverage(), "");
    }

    private static async Task<(double Seconds, double DaemonCpuMs, double ClientCpuMs)> TimedAsync(DaemonProcess daemon, Func<Task> run)
    {
        var daemonCpu = daemon.CpuMs();
        var clientCpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await run();
        var seconds = clock.Elapsed.TotalSeconds;
        return (seconds, daemon.CpuMs() - daemonCpu, (Process.GetCurrentProcess().TotalProcessorTime - clientCpu).TotalMilliseconds);
    }

    private static void Record(Samples samples, AdminResponse response, double ms, List<string> errors, string what)
    {
        samples.Add(ms);
        if (response.IsOk)
            return;
        Interlocked.Increment(ref samples.Errors);
        lock (errors)
            if (errors.Count < 20)
                errors.Add($"{samples.Name} {what}: {response}");
    }
}

/// <summary>qubesd as its own process: the qubesd.dll built next to this bench, on the same dotnet host.</summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _output = new();

    private DaemonProcess(Process process, string socketPath)
    {
        _process = process;
        SocketPath = socketPath;
    }

    public string SocketPath { get; }
    public int Pid => _process.Id;

    private string Output
    {
        get
        {
            lock (_output)
                return string.Join('\n', _output);
        }
    }

    /// <param name="arguments">More qubesd arguments; the default is the simulated backend (the daemon's own default as root is the sandbox one).</param>
    public static async Task<DaemonProcess> StartAsync(string stateDir, IReadOnlyList<string> environment, IReadOnlyList<string>? arguments = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "qubesd.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException("qubesd.dll is not next to the bench; build the solution first", dll);
        var host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        var socket = Path.Combine(stateDir, "qubesd.sock");
        foreach (var a in new[] { dll, "--state-dir", stateDir, "--socket", socket, "--set", "akka.loglevel=WARNING" }.Concat(arguments ?? ["--backend", "simulated"]))
            info.ArgumentList.Add(a);
        foreach (var variable in DaemonSettingsVariables)
            info.Environment.Remove(variable);
        // Runtime knobs to try on the daemon alone (e.g. DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0).
        foreach (var kv in environment)
        {
            var eq = kv.IndexOf('=');
            if (eq <= 0)
                throw new ArgumentException($"--daemon-env expects NAME=VALUE, got '{kv}'");
            info.Environment[kv[..eq]] = kv[(eq + 1)..];
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("qubesd did not start");
        var daemon = new DaemonProcess(process, socket);
        process.OutputDataReceived += (_, e) => daemon.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    private static readonly string[] DaemonSettingsVariables = ["QUBESD_STATE_DIR", "QUBESD_BACKEND", "QUBESD_JOURNAL_PROVIDER", "QUBESD_JOURNAL_CONNECTION_STRING", "QUBESD_LOGLEVEL"];

    private void Keep(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            _output.Enqueue(line);
            if (_output.Count > 50)
                _output.Dequeue();
        }
    }

    /// <summary>Until admin.vm.List answers and <paramref name="qube"/> (autostarted by the default layout) runs, so start chains are out of the figures.</summary>
    public async Task WaitForRunningAsync(AdminClient client, string qube, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"qubesd exited with {_process.ExitCode}:\n{Output}");
            try
            {
                var list = await client.CallAsync("admin.vm.List", qube);
                if (list.IsOk && list.OkText.Contains("state=Running", StringComparison.Ordinal))
                    return;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"qubesd did not answer with {qube} running:\n{Output}");
    }

    /// <summary>utime + stime of the process from /proc/PID/stat (clock ticks of 10 ms).</summary>
    public double CpuMs()
    {
        var stat = File.ReadAllText($"/proc/{_process.Id}/stat");
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 10.0;
    }

    /// <summary>SIGTERM (a clean stop), then SIGKILL if it does not exit.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
    }
}

/// <summary>drive (hidden): calls against a running qubesd, for profiling it (dotnet-trace -p) under a known load.</summary>
public static class AdminApiDrive
{
    public static async Task<int> RunAsync(string socket, string call, string dest, int count, int concurrency)
    {
        var client = new AdminClient(socket);
        var samples = new Samples(call);
        var clock = Stopwatch.StartNew();
        await Parallel.RunAsync(count, concurrency, async i =>
        {
            var op = Stopwatch.StartNew();
            var response = call switch
            {
                "create" => await client.CallAsync("admin.vm.Create.AppVM", "dom0", payload: $"name={Commands.NameOf(i)} label=red"),
                "cycle" => await client.CallAsync("admin.vm.Start", Commands.NameOf(i)) is { IsOk: true }
                    ? await client.CallAsync("admin.vm.Shutdown", Commands.NameOf(i), "wait")
                    : new AdminResponse.Error("", "", "start failed"),
                _ => await client.CallAsync(call, dest),
            };
            samples.Add(op.Elapsed.TotalMilliseconds);
            if (!response.IsOk)
                Interlocked.Increment(ref samples.Errors);
        });
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"{call} x{count} at {concurrency}: {count / seconds:0} calls/s, p50 {samples.Percentile(50):0.000} ms, p90 {samples.Percentile(90):0.000}, p99 {samples.Percentile(99):0.000}, errors {samples.Errors}, load {Child.LoadAverage()}");
        return samples.Errors == 0 ? 0 : 1;
    }
}
