using System.Diagnostics;
using System.Text;

namespace QubesActors.IntegrationTests.Shell;

/// <summary>
/// <c>qvm shell</c> as a user runs it: the qvm.dll next to this assembly, stdin and stdout either pipes (a script)
/// or, through util-linux <c>script</c>, a pseudo-terminal. Output is collected as it comes so tests can wait for text.
/// </summary>
internal sealed class QvmShellProcess : IDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();
    private readonly Task _readers;

    private QvmShellProcess(Process process)
    {
        _process = process;
        _readers = Task.WhenAll(Pump(process.StandardOutput.BaseStream, _out), Pump(process.StandardError.BaseStream, _err));
    }

    public static string QvmDll
    {
        get
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "qvm.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("qvm.dll is not next to the test assembly; build the solution first", dll);
        }
    }

    /// <summary>The dotnet host that runs the tests (as <see cref="QubesdProcess"/> uses for qubesd).</summary>
    public static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    public string Out
    {
        get
        {
            lock (_out)
                return _out.ToString();
        }
    }

    public string Err
    {
        get
        {
            lock (_err)
                return _err.ToString();
        }
    }

    /// <summary>Scripted input: stdin and stdout are pipes, so the shell reads plain lines.</summary>
    public static QvmShellProcess StartPiped(string socket, string home, params string[] args)
    {
        var info = new ProcessStartInfo(DotnetHost) { WorkingDirectory = home };
        info.ArgumentList.Add(QvmDll);
        info.ArgumentList.Add("shell");
        foreach (var a in args)
            info.ArgumentList.Add(a);
        return Start(info, socket, home);
    }

    /// <summary>A pseudo-terminal: <c>script -q -e -c "stty ...; exec dotnet qvm.dll shell ..." /dev/null</c>.</summary>
    public static QvmShellProcess StartInTerminal(string socket, string home, params string[] args)
    {
        var command = new StringBuilder("stty cols 120 rows 40; exec ");
        foreach (var word in new[] { DotnetHost, QvmDll, "shell" }.Concat(args))
            command.Append('\'').Append(word.Replace("'", "'\\''")).Append("' ");
        var info = new ProcessStartInfo("script") { WorkingDirectory = home };
        foreach (var a in new[] { "-q", "-e", "-c", command.ToString(), "/dev/null" })
            info.ArgumentList.Add(a);
        return Start(info, socket, home);
    }

    private static QvmShellProcess Start(ProcessStartInfo info, string socket, string home)
    {
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        info.Environment["QUBESD_SOCKET"] = socket;
        info.Environment["HOME"] = home;
        info.Environment["XDG_STATE_HOME"] = Path.Combine(home, "state");
        info.Environment["TERM"] = "xterm";
        return new QvmShellProcess(Process.Start(info)!);
    }

    public static string HistoryPath(string home) => Path.Combine(home, "state", "qubesactors", "qvm_history");

    private static async Task Pump(Stream stream, StringBuilder into)
    {
        var buffer = new byte[4096];
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            var count = decoder.GetChars(buffer, 0, n, chars, 0);
            lock (into)
                into.Append(chars, 0, count);
        }
    }

    public void Send(string keys)
    {
        _process.StandardInput.Write(keys);
        _process.StandardInput.Flush();
    }

    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>Waits until stdout shows <paramref name="text"/> after position <paramref name="from"/>; returns where it ends.</summary>
    public async Task<int> WaitForAsync(string text, int from = 0)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var output = Out;
            var at = from <= output.Length ? output.IndexOf(text, from, StringComparison.Ordinal) : -1;
            if (at >= 0)
                return at + text.Length;
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                await Task.Delay(200);
                throw new TimeoutException($"'{Visible(text)}' did not appear (exited: {_process.HasExited}).\nstdout:\n{Visible(Out)}\nstderr:\n{Err}");
            }
            await Task.Delay(20);
        }
    }

    public async Task<int> WaitForExitAsync()
    {
        using var cts = new CancellationTokenSource(Patience);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"qvm shell did not exit.\nstdout:\n{Visible(Out)}\nstderr:\n{Err}");
        }
        await _readers.WaitAsync(Patience);
        return _process.ExitCode;
    }

    /// <summary>Escape sequences made readable for failure messages.</summary>
    public static string Visible(string text) => text.Replace("\u001b", "^[").Replace("\r", "^M");

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process.Dispose();
    }
}
