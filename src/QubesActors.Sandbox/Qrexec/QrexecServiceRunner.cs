using System.Diagnostics;
using QubesActors.Sandbox.Guest;

namespace QubesActors.Sandbox.Qrexec;

/// <summary>
/// The command line that runs something inside a running sandbox (pure). A host shell writes its own pid into the
/// sandbox's cgroup(s) (so the service is accounted, limited and frozen with the qube), opens the helper
/// <see cref="Helper"/> on the host as fd 3, then becomes nsenter, which joins every namespace of the sandbox's init
/// and its root and executes the helper as <c>/proc/self/fd/3</c>: never a path inside the qube, which the qube could
/// redirect while nsenter still holds the host's capabilities. The helper drops every capability, sets
/// no_new_privs and only then looks up and runs the service (Guest/src/qrexec-service-exec.c).
/// </summary>
public sealed record ServiceExecCommand(int InitPid, IReadOnlyList<string> CgroupProcsFiles, string Helper, IReadOnlyList<string> HelperArguments,
    string Nsenter = "/usr/bin/nsenter", string Shell = "/bin/sh")
{
    public IReadOnlyList<string> Arguments()
    {
        var args = new List<string>
        {
            "-c",
            "while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 125; shift; done; shift; exec 3< \"$1\" || exit 125; shift; exec \"$@\"",
            "qrexec-service",
        };
        args.AddRange(CgroupProcsFiles);
        args.Add("--");
        args.Add(Helper);
        args.AddRange([Nsenter, "-t", InitPid.ToString(System.Globalization.CultureInfo.InvariantCulture), "--all", "--root", "--wd", "/proc/self/fd/3"]);
        args.AddRange(HelperArguments);
        return args;
    }

    /// <summary>The environment a service gets (nothing of qubesd's own).</summary>
    public static IReadOnlyDictionary<string, string> Environment(string caller, string service, string argument) => new Dictionary<string, string>
    {
        ["PATH"] = $"/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{GuestBundle.BinInside}",
        ["HOME"] = "/rw/home",
        ["QREXEC_REMOTE_DOMAIN"] = caller,
        ["QREXEC_SERVICE_FULL_NAME"] = argument.Length == 0 ? service : $"{service}+{argument}",
        ["QREXEC_SERVICE_ARGUMENT"] = argument,
    };
}

/// <summary>
/// Runs qrexec services (and plain commands) inside running sandboxes with their stdin, stdout and stderr relayed
/// from and to streams. Nothing is forked from the CLR: the shell of <see cref="ServiceExecCommand"/> is started as a
/// process. Cancelling kills the service's process tree and throws.
/// </summary>
public sealed class QrexecServiceRunner(SandboxManager manager, string? helper = null)
{
    private readonly string _helper = helper ?? GuestBundle.ServiceHelper;

    /// <summary>
    /// Runs SERVICE[+ARG] in <paramref name="target"/> for <paramref name="caller"/>: <c>/etc/qubes-rpc/SERVICE+ARG</c>,
    /// else <c>/etc/qubes-rpc/SERVICE</c>; a missing service ends with exit code 127 and a message on stderr.
    /// Returns the service's exit code (128 + N when a signal N ended it).
    /// </summary>
    /// <param name="launched">Awaited once the service is launched and its streams connected (see <see cref="QrexecRoute.Allowed.Launched"/>).</param>
    public Task<int> RunServiceAsync(string target, string caller, string service, string argument, Stream stdin, Stream stdout, Stream stderr,
        CancellationToken ct, Func<CancellationToken, Task>? launched = null)
    {
        // A parked launcher (a preloaded disposable's) is told its call; it execs the service at once.
        if (_slots.TryRemove(target, out var slot))
        {
            if (!slot.HasExited && !service.Contains('\t') && !argument.Contains('\t') && !caller.Contains('\t'))
            {
                try
                {
                    var line = System.Text.Encoding.UTF8.GetBytes($"{service}\t{argument}\t{caller}\n");
                    slot.StandardInput.BaseStream.Write(line);
                    slot.StandardInput.BaseStream.Flush();
                    return RelayAsync(slot, stdin, stdout, stderr, ct, launched);
                }
                catch (IOException)
                {
                    // It ended between the check and the write: launch as usual.
                }
            }
            Kill(slot);
            slot.Dispose();
        }
        return RelayAsync(Start(target, ["service", service, argument], ServiceExecCommand.Environment(caller, service, argument)), stdin, stdout, stderr, ct,
            launched);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Process> _slots = CreateSlots(manager);

    /// <summary>A slot goes with its qube (killed unused: a preloaded disposable removed, the pool made smaller).</summary>
    private static System.Collections.Concurrent.ConcurrentDictionary<string, Process> CreateSlots(SandboxManager manager)
    {
        var slots = new System.Collections.Concurrent.ConcurrentDictionary<string, Process>(StringComparer.Ordinal);
        manager.SandboxStopped += exited =>
        {
            if (slots.TryRemove(exited.Name, out var slot))
                slot.Dispose();
        };
        return slots;
    }

    /// <summary>
    /// Launches, in <paramref name="target"/>, the service launcher of its next call ahead of time: joined to the
    /// qube's namespaces and cgroup, capabilities dropped, waiting on its stdin for the call (the helper's
    /// <c>slot</c>). For preloaded disposables, whose one call must not wait for four process starts. Returns once
    /// the launcher says it is parked: a qube paused before that would freeze it half-way, and the call would pay
    /// for the rest of the launch. A slot whose qube stops ends with it; an unused one is replaced by the next one.
    /// </summary>
    public async Task PrepareSlotAsync(string target, CancellationToken ct)
    {
        var process = Start(target, ["slot"], ServiceExecCommand.Environment("", "", ""));
        try
        {
            var ack = new byte[1];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(SlotReadyTimeout);
            var read = await process.StandardOutput.BaseStream.ReadAsync(ack, timeout.Token).ConfigureAwait(false);
            if (read != 1 || ack[0] != SlotReady)
                throw new SandboxException($"qrexec: the parked service launcher of {target} ended before it was ready: " +
                                           (await process.StandardError.ReadToEndAsync(ct).ConfigureAwait(false)).Trim());
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SandboxException)
        {
            Kill(process);
            process.Dispose();
            if (e is OperationCanceledException && !ct.IsCancellationRequested)
                throw new SandboxException($"qrexec: the parked service launcher of {target} was not ready within {SlotReadyTimeout.TotalSeconds:0} s");
            throw;
        }
        if (_slots.TryGetValue(target, out var old) && _slots.TryUpdate(target, process, old))
        {
            Kill(old);
            old.Dispose();
        }
        else
            _slots[target] = process;
    }

    /// <summary>What the helper writes once parked (ACK).</summary>
    private const byte SlotReady = 0x06;

    /// <summary>How long a parked launcher may take to get ready.</summary>
    public TimeSpan SlotReadyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Runs a command (looked up on the sandbox's PATH) in <paramref name="target"/> as a service would run: no capabilities, its HOME.</summary>
    public Task<int> RunInSandboxAsync(string target, IReadOnlyList<string> command, Stream stdin, Stream stdout, Stream stderr, CancellationToken ct)
    {
        if (command.Count == 0)
            throw new ArgumentException("no command", nameof(command));
        return RunAsync(target, ["exec", .. command], ServiceExecCommand.Environment("dom0", "", ""), stdin, stdout, stderr, ct);
    }

    private Task<int> RunAsync(string target, IReadOnlyList<string> helperArguments, IReadOnlyDictionary<string, string> environment,
        Stream stdin, Stream stdout, Stream stderr, CancellationToken ct) =>
        RelayAsync(Start(target, helperArguments, environment), stdin, stdout, stderr, ct);

    private Process Start(string target, IReadOnlyList<string> helperArguments, IReadOnlyDictionary<string, string> environment)
    {
        if (!File.Exists(_helper))
            throw new SandboxException($"the qrexec helper is missing ({_helper}): build QubesActors.Sandbox (it compiles the guest bundle)");
        var command = new ServiceExecCommand(manager.InitPidOf(target), manager.CgroupProcsFilesOf(target), _helper, helperArguments);
        var info = new ProcessStartInfo(command.Shell)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in command.Arguments())
            info.ArgumentList.Add(a);
        info.Environment.Clear();
        foreach (var (key, value) in environment)
            info.Environment[key] = value;
        return Process.Start(info) ?? throw new SandboxException($"qrexec: the service launcher for {target} did not start");
    }

    private async Task<int> RelayAsync(Process started, Stream stdin, Stream stdout, Stream stderr, CancellationToken ct,
        Func<CancellationToken, Task>? launched = null)
    {
        using var process = started;
        // The pumps stop with the call, whatever the caller's streams do.
        using var pumps = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var input = PumpInputAsync(stdin, process.StandardInput.BaseStream, pumps.Token);
        var output = process.StandardOutput.BaseStream.CopyToAsync(stdout, pumps.Token);
        var errors = process.StandardError.BaseStream.CopyToAsync(stderr, pumps.Token);
        try
        {
            if (launched is not null)
            {
                try
                {
                    await launched(ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Kill(process);
                    throw new SandboxException(e.Message);
                }
            }
            var exited = process.WaitForExitAsync(ct);
            var relays = Task.WhenAll(output, errors);
            // A relay that fails (the caller's end broke) must not leave the service blocked on a full pipe.
            if (await Task.WhenAny(exited, relays).ConfigureAwait(false) == relays)
                await relays.ConfigureAwait(false);
            await exited.ConfigureAwait(false);
            // What the service wrote before it ended still reaches the caller.
            await relays.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
        catch (IOException)
        {
            // The caller's end broke (it went away): the service goes too.
            Kill(process);
            throw;
        }
        finally
        {
            await pumps.CancelAsync().ConfigureAwait(false);
            await Task.WhenAny(input, Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None)).ConfigureAwait(false);
        }
        return process.ExitCode;
    }

    private static async Task PumpInputAsync(Stream from, Stream to, CancellationToken ct)
    {
        try
        {
            await from.CopyToAsync(to, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The service closed its stdin or ended: what the caller still sends is dropped, as in Qubes.
        }
        finally
        {
            try
            {
                to.Dispose();
            }
            catch (IOException)
            {
            }
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }
}
