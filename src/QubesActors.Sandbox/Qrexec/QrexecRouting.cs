namespace QubesActors.Sandbox.Qrexec;

/// <summary>
/// A qrexec call as qubesd sees it. <see cref="Caller"/> is who called: the qube whose channel the call came in on
/// (or <c>dom0</c>), never a name the caller sent. <see cref="Target"/>, <see cref="Service"/> and
/// <see cref="Argument"/> are what the caller asked for (validated for form, not for meaning).
/// </summary>
public sealed record QrexecCall(string Caller, string Target, string Service, string Argument)
{
    public string FullName => Argument.Length == 0 ? Service : $"{Service}+{Argument}";
}

/// <summary>What the runtime decided for a call.</summary>
public abstract record QrexecRoute
{
    private QrexecRoute()
    {
    }

    /// <summary>Not allowed (or impossible): the caller sees "Request refused" with <paramref name="Message"/> and exit code 126.</summary>
    public sealed record Denied(string Message) : QrexecRoute;

    /// <summary>
    /// Run the service in <paramref name="TargetQube"/>, a running sandbox (the runtime resolved <c>@dispvm</c>,
    /// <c>@default</c>, started the target). <paramref name="Ended"/> is called once when the call is over, with the
    /// service's exit code (137 when the target was killed under it; -1 when the call was cut off: the caller went
    /// away or misbehaved, qubesd is stopping, the target was not running), e.g. to destroy a disposable.
    /// </summary>
    public sealed record Allowed(string TargetQube, Func<int, Task> Ended) : QrexecRoute
    {
        /// <summary>
        /// Called once the service is launched and its input and output are connected, before the call waits for it;
        /// a failure kills the service and refuses the call. A preloaded disposable is handed out paused and
        /// unpaused here: the call line and its input are already in the launcher's pipe when it thaws, so the
        /// service runs at once instead of after qubesd's reply to the unpause.
        /// </summary>
        public Func<CancellationToken, Task>? Launched { get; init; }
    }

    /// <summary>
    /// Answered by qubesd itself, as dom0's services are in Qubes (e.g. <c>qubes.GetDate</c> to dom0): the delegate gets
    /// the call's input and output and returns its exit code.
    /// </summary>
    public sealed record Served(Func<Stream, Stream, Stream, CancellationToken, Task<int>> Run) : QrexecRoute;
}

/// <summary>The runtime side of qrexec: policy, starting the target, disposables, journaling.</summary>
public interface IQrexecRouter
{
    Task<QrexecRoute> RouteAsync(QrexecCall call, CancellationToken ct);
}
