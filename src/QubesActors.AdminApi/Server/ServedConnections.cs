namespace QubesActors.AdminApi.Server;

/// <summary>
/// The connections a socket server is serving, so that stopping it waits for them (bounded) before the socket file
/// goes. Shared by the Admin API and the policy socket.
/// </summary>
internal sealed class ServedConnections
{
    private readonly HashSet<Task> _running = [];

    /// <summary>Runs <paramref name="serve"/> and tracks it; <paramref name="ended"/> runs when it ends, however it ends.</summary>
    public void Start(Func<Task> serve, Action? ended = null)
    {
        var connection = Task.Run(serve, CancellationToken.None);
        lock (_running)
            _running.Add(connection);
        _ = connection.ContinueWith(t =>
        {
            lock (_running)
                _running.Remove(t);
            ended?.Invoke();
        }, TaskScheduler.Default);
    }

    /// <summary>After the accept loop has ended: waits up to 10 s for the open connections, then removes the socket file.</summary>
    public async Task StopAsync(string socketPath, bool bound)
    {
        Task[] pending;
        lock (_running)
            pending = [.. _running];
        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!bound)
            return;
        try
        {
            File.Delete(socketPath);
        }
        catch (IOException)
        {
        }
    }
}
