using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using QubesActors.AdminApi.Client;
using QubesActors.AdminApi.Wire;

namespace QubesActors.IntegrationTests;

/// <summary>A real qubesd process (the build output next to this assembly) on a temp state directory.</summary>
public sealed class QubesdProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private QubesdProcess(Process process, string stateDir, string socketPath)
    {
        _process = process;
        StateDir = stateDir;
        SocketPath = socketPath;
        Client = new AdminClient(socketPath);
    }

    public string StateDir { get; }
    public string SocketPath { get; }
    public AdminClient Client { get; }
    public int Pid => _process.Id;
    public string Output => string.Join('\n', _output);

    public static string DaemonDll
    {
        get
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "qubesd.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("qubesd.dll is not next to the test assembly; build the solution first", dll);
        }
    }

    /// <summary>The dotnet host that runs the tests (DOTNET_HOST_PATH is set by the SDK), else dotnet on PATH.</summary>
    private static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static ProcessStartInfo StartInfo(params string[] args)
    {
        var info = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(DaemonDll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        // The test run's own settings must not leak into the daemon.
        foreach (var variable in new[] { "QUBESD_STATE_DIR", "QUBESD_BACKEND", "QUBESD_JOURNAL_PROVIDER", "QUBESD_JOURNAL_CONNECTION_STRING" })
            info.Environment.Remove(variable);
        // The daemon's default on Linux as root is the sandbox backend; the tests that want it say --backend sandbox.
        info.Environment["QUBESD_BACKEND"] = "simulated";
        return info;
    }

    public static async Task<QubesdProcess> StartAsync(string stateDir, string? socketPath = null, TimeSpan? timeout = null, IEnumerable<string>? extraArgs = null)
    {
        socketPath ??= Path.Combine(stateDir, "s.sock");
        var process = Process.Start(StartInfo(["--state-dir", stateDir, "--socket", socketPath, .. extraArgs ?? []]))!;
        var daemon = new QubesdProcess(process, stateDir, socketPath);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) daemon._output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) daemon._output.Enqueue("err: " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await daemon.WaitUntilAnsweringAsync(timeout ?? TimeSpan.FromSeconds(60));
        return daemon;
    }

    /// <summary>Polls admin.vm.List until it is answered with an ok frame.</summary>
    private async Task WaitUntilAnsweringAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"qubesd exited with {_process.ExitCode} before answering:\n{Output}");
            try
            {
                if ((await Client.CallAsync("admin.vm.List", "dom0")).IsOk)
                    return;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"qubesd did not answer on {SocketPath} within {timeout}:\n{Output}");
    }

    public Task<AdminResponse> CallAsync(string method, string dest, string arg = "", string? payload = null) => Client.CallAsync(method, dest, arg, payload);

    /// <summary>SIGKILL (Process.Kill on Linux): no shutdown code runs.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit(30_000);
    }

    /// <summary>SIGTERM, then the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
            if (kill.ExitCode != 0)
                throw new InvalidOperationException($"kill -TERM {_process.Id} failed");
        }
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            Kill();
        _process.Dispose();
    }

    /// <summary>Runs qubesd with these arguments to its exit: the exit code and everything it printed.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
    {
        using var process = Process.Start(StartInfo(args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"qubesd {string.Join(' ', args)} did not exit:\n{await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary><c>qubesd --state-dir DIR --check --json</c> as a process: its exit code and the parsed rows.</summary>
    public static async Task<CheckResult> CheckAsync(string stateDir)
    {
        using var process = Process.Start(StartInfo("--state-dir", stateDir, "--check", "--json"))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
        var text = await stdout;
        using var json = JsonDocument.Parse(text);
        var rows = json.RootElement.GetProperty("qubes").EnumerateArray().Select(q => new CheckRow(
            q.GetProperty("name").GetString()!,
            q.GetProperty("power").GetString()!,
            q.GetProperty("events").GetInt64(),
            q.GetProperty("starts").GetInt32(),
            q.GetProperty("quarantine").ValueKind == JsonValueKind.Null ? null : q.GetProperty("quarantine").GetString()))
            .ToDictionary(r => r.Name, StringComparer.Ordinal);
        var problems = json.RootElement.GetProperty("problems").EnumerateArray().Select(p => p.ToString()).ToList();
        return new CheckResult(process.ExitCode, rows, problems, text + await stderr);
    }

    /// <summary>Names in the simulated backend's running set (&lt;state-dir&gt;/simulated-backend.json).</summary>
    public static HashSet<string> BackendRunning(string stateDir) => [.. BackendStates(stateDir).Keys];

    /// <summary>The simulated backend's domains with their power state.</summary>
    public static Dictionary<string, string> BackendStates(string stateDir)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(stateDir, "simulated-backend.json")));
        return json.RootElement.EnumerateArray().ToDictionary(d => d.GetProperty("Name").GetString()!,
            d => ((Core.Model.PowerState)d.GetProperty("State").GetInt32()).ToString(), StringComparer.Ordinal);
    }
}

public sealed record CheckRow(string Name, string Power, long Events, int Starts, string? Quarantine);

public sealed record CheckResult(int ExitCode, IReadOnlyDictionary<string, CheckRow> Qubes, IReadOnlyList<string> Problems, string Text);
