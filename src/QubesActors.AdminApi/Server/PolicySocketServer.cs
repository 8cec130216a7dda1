using System.Net.Sockets;
using System.Text;
using QubesActors.Core.Policy;
using QubesActors.Runtime.Policy;

namespace QubesActors.AdminApi.Server;

public sealed record PolicySocketOptions
{
    public required string SocketPath { get; init; }
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>A request is a few short lines; anything longer is not one.</summary>
    public int MaxRequestBytes { get; init; } = 65_536;
    public string? SocketGroup { get; init; } = "qubes";
    public Action<string>? Log { get; init; }
}

/// <summary>Decides one request (the policy actor behind it); <paramref name="caller"/> names the connection for the audit record.</summary>
public delegate Task<PolicyOutcome> PolicyEvaluator(PolicyRequest request, PolicyCallOptions options, string caller, CancellationToken ct);

/// <summary>
/// The qrexec-policy-daemon socket (docs/policy-runtime.md): one request per connection, answered with the §7 text and
/// closed. A malformed request closes the connection without an answer, as upstream does.
/// </summary>
public sealed class PolicySocketServer(PolicySocketOptions options, PolicyEvaluator evaluate) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly ServedConnections _connections = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;

    public string SocketPath => options.SocketPath;

    public void Start()
    {
        if (_listener is not null)
            throw new InvalidOperationException("already started");
        _listener = AdminSocketServer.Bind(options.SocketPath, options.SocketGroup, 128, options.Log);
        _acceptLoop = Task.Run(AcceptLoop);
    }

    private async Task AcceptLoop()
    {
        var ct = _stopping.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (ct.IsCancellationRequested)
                    return;
                options.Log?.Invoke($"policy socket: accept failed: {e.Message}");
                continue;
            }
            _connections.Start(() => Serve(client, ct));
        }
    }

    private async Task Serve(Socket client, CancellationToken stopping)
    {
        using var _ = client;
        try
        {
            var peer = PeerCredentials.Of(client);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            timeout.CancelAfter(options.ReadTimeout);
            var buffer = new byte[4096];
            var length = 0;
            int end;
            while (true)
            {
                end = PolicySocketRequest.EndOf(buffer.AsSpan(0, length));
                if (end >= 0)
                    break;
                if (length == buffer.Length)
                {
                    if (buffer.Length >= options.MaxRequestBytes)
                    {
                        options.Log?.Invoke("error parsing policy request: request too long");
                        return;
                    }
                    Array.Resize(ref buffer, Math.Min(buffer.Length * 2, options.MaxRequestBytes));
                }
                var n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    // EOF ends the request like an empty line (upstream's readline gives "").
                    end = length;
                    break;
                }
                length += n;
            }
            var request = PolicySocketRequest.Parse(buffer.AsSpan(0, end), out var error);
            if (request is null)
            {
                options.Log?.Invoke($"error parsing policy request: {error}");
                return;
            }
            var caller = peer is null ? "policy-socket" : $"policy-socket (uid={peer.Uid} pid={peer.Pid})";
            var outcome = await evaluate(request.Request, request.Options, caller, stopping).ConfigureAwait(false);
            var response = Encoding.ASCII.GetBytes(outcome.Response);
            var sent = 0;
            while (sent < response.Length)
                sent += await client.SendAsync(response.AsMemory(sent), SocketFlags.None, stopping).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            options.Log?.Invoke("policy socket: no complete request in time; connection dropped");
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // client gone or server stopping
        }
        catch (Exception e)
        {
            // e.g. the policy actor did not answer: no answer is a deny for qrexec-daemon, and the connection must not leak
            options.Log?.Invoke($"policy socket: request failed: {e.GetType().Name}: {e.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        await _connections.StopAsync(options.SocketPath, bound: _listener is not null).ConfigureAwait(false);
        _stopping.Dispose();
    }
}
