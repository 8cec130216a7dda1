using System.Text;
using QubesActors.AdminApi.Client;
using QubesActors.AdminApi.Wire;

namespace QubesActors.Cli.Shell;

/// <summary>
/// The <c>watch</c> stream: admin.Events in the background, each event handed to <c>onEvent</c>, the end of the
/// stream (daemon gone, error) to <c>onEnded</c>. <see cref="StartAsync"/> returns once qubesd confirmed the
/// subscription, so an event caused by the next command is never missed.
/// </summary>
public sealed class EventWatch : IAsyncDisposable
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    private EventWatch(string dest) => Dest = dest;

    /// <summary>dom0 for every event, else the one qube watched.</summary>
    public string Dest { get; }

    public static async Task<EventWatch> StartAsync(AdminClient client, string dest, Action<AdminResponse.Event> onEvent, Action<string> onEnded)
    {
        var watch = new EventWatch(dest);
        var established = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watch._loop = Task.Run(() => watch.RunAsync(client, established, onEvent, onEnded));
        try
        {
            await established.Task.WaitAsync(ConnectTimeout).ConfigureAwait(false);
        }
        catch
        {
            await watch.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return watch;
    }

    private async Task RunAsync(AdminClient client, TaskCompletionSource established, Action<AdminResponse.Event> onEvent, Action<string> onEnded)
    {
        var ct = _stop.Token;
        try
        {
            await foreach (var frame in client.EventsAsync(Dest, ct).ConfigureAwait(false))
            {
                switch (frame)
                {
                    case AdminResponse.Event { Name: "connection-established" }:
                        established.TrySetResult();
                        break;
                    case AdminResponse.Event e:
                        onEvent(e);
                        break;
                    case AdminResponse.Error error:
                        throw new InvalidOperationException($"qubesd refused the event stream: {error.ClassName}: {error.Message}");
                }
            }
            if (!ct.IsCancellationRequested)
            {
                established.TrySetException(new IOException("qubesd closed the event stream"));
                onEnded("qubesd closed the event stream");
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            established.TrySetCanceled(ct);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Before the subscription is confirmed the failure is StartAsync's; after, the shell is told.
            if (!established.TrySetException(e))
                onEnded(ShellErrors.Describe(e, client.SocketPath));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The loop reports its own failures; stopping must not throw.
        }
        _stop.Dispose();
    }

    /// <summary>
    /// <c>[event] work: domain-start key=value ...</c>. Control characters become '?': arguments carry values
    /// that qubes can influence, and the terminal must not interpret them.
    /// </summary>
    public static string Format(AdminResponse.Event e)
    {
        var line = new StringBuilder("[event] ");
        line.Append(e.Subject.Length == 0 ? "(global)" : e.Subject).Append(": ").Append(e.Name);
        foreach (var (key, value) in e.Arguments)
            line.Append(' ').Append(key).Append('=').Append(value);
        return Sanitize(line.ToString());
    }

    public static string Sanitize(string text) =>
        string.Create(text.Length, text, (span, s) =>
        {
            for (var i = 0; i < s.Length; i++)
                span[i] = char.IsControl(s[i]) ? '?' : s[i];
        });
}
