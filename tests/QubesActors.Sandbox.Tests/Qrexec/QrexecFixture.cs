using System.Collections.Concurrent;
using System.Text;
using QubesActors.Core.Model;
using QubesActors.Sandbox.Qrexec;
using QubesActors.Sandbox.Tests.Sandboxes;

namespace QubesActors.Sandbox.Tests.Qrexec;

/// <summary>A router for tests: allows or denies by a rule, records every call it saw and every end it was told of.</summary>
public sealed class FakeRouter(Func<QrexecCall, QrexecRoute?>? rule = null) : IQrexecRouter
{
    public ConcurrentQueue<QrexecCall> Calls { get; } = new();
    public ConcurrentQueue<(QrexecCall Call, int Code)> Ended { get; } = new();

    /// <summary>Allows every call to its named target (a running sandbox), unless the rule says otherwise.</summary>
    public Task<QrexecRoute> RouteAsync(QrexecCall call, CancellationToken ct)
    {
        Calls.Enqueue(call);
        var route = rule?.Invoke(call) ?? new QrexecRoute.Allowed(call.Target, code =>
        {
            Ended.Enqueue((call, code));
            return Task.CompletedTask;
        });
        return Task.FromResult(route);
    }
}

/// <summary>Two-or-more real sandboxes on the busybox template with a qrexec service on their channels.</summary>
public sealed class QrexecFixture : IAsyncDisposable
{
    public TestStorage T { get; } = new();
    public FakeRouter Router { get; }
    public QrexecService Service { get; private set; }

    public QrexecFixture(FakeRouter? router = null, int maxCallsPerQube = 64)
    {
        Router = router ?? new FakeRouter();
        Service = new QrexecService(T.Manager, Router, maxCallsPerQube: maxCallsPerQube);
        // Test services, as a template would ship them.
        InstallService("test.Echo", """
            read -r line
            echo "got $line from $QREXEC_REMOTE_DOMAIN for $QREXEC_SERVICE_FULL_NAME arg=$QREXEC_SERVICE_ARGUMENT"
            echo "to stderr" >&2
            exit 3
            """);
        InstallService("test.Cat", "exec cat");
        InstallService("test.Facts", """
            grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status
            hostname
            echo "pid $$"
            echo "cwd $(pwd)"
            echo "home $HOME"
            grep -c . /proc/self/cgroup > /dev/null && cat /proc/self/cgroup
            """);
    }

    public void InstallService(string name, string script)
    {
        var file = Path.Combine(T.TemplateRoot, "etc", "qubes-rpc", name);
        File.WriteAllText(file, "#!/bin/sh\n" + script.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("755", 8));
    }

    public async Task<string> Start(string suffix, Action<string>? prepare = null)
    {
        var name = T.Name(suffix);
        prepare?.Invoke(name);
        await T.Manager.StartAsync(new SandboxSpec(name, QubeClass.AppVM, TestStorage.Template, 128), CancellationToken.None);
        return name;
    }

    /// <summary>The private volume's home of a qube, on the host.</summary>
    public string Home(string name) => Path.Combine(T.Storage, "qubes", name, "private", "home");

    /// <summary>Runs a shell script inside <paramref name="qube"/> (as a service would run: no capabilities).</summary>
    public Task<Result> Sh(string qube, string script, string stdin = "") => Sh(Service.Runner, qube, script, stdin);

    public static async Task<Result> Sh(QrexecServiceRunner runner, string qube, string script, string stdin = "")
    {
        using var output = new MemoryStream();
        using var errors = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var code = await runner.RunInSandboxAsync(qube, ["sh", "-c", script], new MemoryStream(Encoding.UTF8.GetBytes(stdin)), output, errors, timeout.Token);
        return new Result(code, Encoding.UTF8.GetString(output.ToArray()), Encoding.UTF8.GetString(errors.ToArray()));
    }

    /// <summary>A call from dom0 through the service's entry point.</summary>
    public async Task<Result> FromDom0(string target, string service, string argument = "", string stdin = "")
    {
        using var output = new MemoryStream();
        using var errors = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var code = await Service.CallFromDom0Async(target, service, argument, new MemoryStream(Encoding.UTF8.GetBytes(stdin)), output, errors, timeout.Token);
        return new Result(code, Encoding.UTF8.GetString(output.ToArray()), Encoding.UTF8.GetString(errors.ToArray()));
    }

    /// <summary>A new manager and service take over (qubesd restarted): the old ones let go, the new ones adopt.</summary>
    public async Task<SandboxManager> RestartDaemon()
    {
        T.Manager.LetGo();
        await Service.DisposeAsync();
        var next = new SandboxManager(T.Storage, T.Cgroups);
        await next.AdoptAsync(CancellationToken.None);
        Adopted = next;
        Service = new QrexecService(next, Router);
        return next;
    }

    public SandboxManager? Adopted { get; private set; }

    public async ValueTask DisposeAsync()
    {
        await Service.DisposeAsync();
        if (Adopted is not null)
            foreach (var name in Adopted.RunningNames)
                await Adopted.KillAsync(name, CancellationToken.None);
        await T.DisposeAsync();
    }

    public sealed record Result(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}, stdout [{Out}], stderr [{Err}]";
    }
}
