using System.Runtime.Versioning;
using Akka.Actor;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using QubesActors.Sandbox;
using QubesActors.Sandbox.Qrexec;

namespace QubesActors.Daemon.Qrexec;

/// <summary>What the host needs of qrexec without naming Linux-only types: serve once the actors are ready, stop first.</summary>
public interface IQrexecHosting
{
    string Dom0Socket { get; }
    void Serve(IActorRef qubes, IActorRef policy, ILogger log);
    ValueTask StopAsync();
}

/// <summary>
/// qrexec on the sandbox backend (docs/qrexec.md): every sandbox's channel and dom0's socket served by a
/// <see cref="QrexecService"/>, routed by <see cref="QrexecRouter"/> through the policy and the collection, with the
/// pool of preloaded disposables.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class QrexecHosting(SandboxManager manager, string dom0Socket, TimeSpan callTimeout) : IQrexecHosting
{
    private QrexecService? _service;
    private DisposablePool? _pool;

    public string Dom0Socket => dom0Socket;

    public void Serve(IActorRef qubes, IActorRef policy, ILogger log)
    {
        _pool = new DisposablePool(qubes, callTimeout, log);
        _service = new QrexecService(manager, new QrexecRouter(qubes, policy, callTimeout, _pool));
        _pool.PrepareSlot = _service.Runner.PrepareSlotAsync;
        _service.ListenDom0(dom0Socket);
        _pool.Start();
    }

    public async ValueTask StopAsync()
    {
        if (_pool is not null)
            await _pool.DisposeAsync().ConfigureAwait(false);
        if (_service is not null)
            await _service.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Registered when qrexec is served: stops it before the actors stop.</summary>
public sealed class QrexecHostedService(IQrexecHosting hosting) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken) => await hosting.StopAsync().ConfigureAwait(false);
}
