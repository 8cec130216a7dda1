using System.Runtime.Versioning;
using Akka.Actor;
using QubesActors.Core.Model;
using QubesActors.Core.Policy;
using QubesActors.Runtime.Actors;
using QubesActors.Runtime.Policy;
using QubesActors.Sandbox.Qrexec;

namespace QubesActors.Daemon.Qrexec;

/// <summary>
/// qubesd's side of a qrexec call (what qrexec-daemon and qrexec-policy-daemon do in Qubes): a call from a qube is
/// decided by the policy with the channel's qube as source; an allowed call gets its target running (a disposable
/// created and started for <c>@dispvm</c>, killed — and so removed — when the call ends). Calls from dom0 are not
/// subject to the policy, as in Qubes, but are journaled with the decisions.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class QrexecRouter(IActorRef qubes, IActorRef policy, TimeSpan timeout, DisposablePool? pool = null) : IQrexecRouter
{
    private static readonly Func<int, Task> Nothing = _ => Task.CompletedTask;

    /// <summary>
    /// The services dom0 answers itself (qubesd is dom0 here). qubes.GetDate is what the shipped policy sends to dom0
    /// (`qubes.GetDate * @anyvm @anyvm allow target=dom0`): qubes' clock synchronisation reads dom0's UTC time.
    /// </summary>
    private static readonly IReadOnlyDictionary<string, Func<Stream, Stream, Stream, CancellationToken, Task<int>>> Dom0Services =
        new Dictionary<string, Func<Stream, Stream, Stream, CancellationToken, Task<int>>>(StringComparer.Ordinal)
        {
            ["qubes.GetDate"] = async (_, stdout, _, ct) =>
            {
                // As `date -u -Iseconds`, which the service in a qube prints too.
                var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'+00:00'", System.Globalization.CultureInfo.InvariantCulture);
                await stdout.WriteAsync(System.Text.Encoding.ASCII.GetBytes(now + "\n"), ct).ConfigureAwait(false);
                return 0;
            },
        };

    public async Task<QrexecRoute> RouteAsync(QrexecCall call, CancellationToken ct)
    {
        var request = PolicyRequest.Of(call.FullName, call.Caller, call.Target);
        string target;
        var autostart = true;
        if (call.Caller == QrexecService.Dom0)
        {
            target = call.Target switch
            {
                "@dispvm" => "@dispvm:" + (await DefaultDispVmAsync(ct).ConfigureAwait(false) ?? ""),
                _ => call.Target,
            };
            policy.Tell(new PolicyProtocol.RecordDom0Call(request, target, "qrexec dom0"));
        }
        else
        {
            var outcome = await policy.Ask<PolicyOutcome>(new PolicyProtocol.EvaluatePolicy(request, new PolicyCallOptions(), $"qrexec {call.Caller}"), timeout, ct)
                .ConfigureAwait(false);
            if (!outcome.Allowed || outcome.Final.Target is not { } allowed)
                return new QrexecRoute.Denied($"{call.FullName} from {call.Caller} to {call.Target} denied by the policy" +
                                              (outcome.Final.Reason is { Length: > 0 } reason ? $": {reason}" : ""));
            target = allowed;
            autostart = outcome.Final.Autostart;
        }

        var caller = new Caller(call.Caller, Method: $"qrexec {call.FullName}");
        if (target.StartsWith("@dispvm:", StringComparison.Ordinal))
            return await DisposableAsync(target["@dispvm:".Length..], caller, ct).ConfigureAwait(false);
        if (target == CollectionState.AdminName)
            return Dom0Services.TryGetValue(call.Service, out var service)
                ? new QrexecRoute.Served(service)
                : new QrexecRoute.Denied($"dom0 does not serve {call.Service} here (dom0's services: {string.Join(", ", Dom0Services.Keys)})");

        var state = await SnapshotAsync(ct).ConfigureAwait(false);
        var qube = target.StartsWith("uuid:", StringComparison.Ordinal) && Guid.TryParse(target["uuid:".Length..], out var uuid)
            ? state.Qubes.Values.FirstOrDefault(q => q.Uuid == uuid)
            : state.Find(target);
        if (qube is null)
            return new QrexecRoute.Denied($"target {target} does not exist");
        switch (qube.Power)
        {
            case PowerState.Running:
                return new QrexecRoute.Allowed(qube.Name, Nothing);
            case PowerState.Paused or PowerState.Suspended:
                return new QrexecRoute.Denied($"target {qube.Name} is paused");
            default:
                if (!autostart)
                    return new QrexecRoute.Denied($"target {qube.Name} is not running and the policy says autostart=no");
                var started = await SendAsync(new QubesProtocol.StartQube(qube.Name, caller), ct).ConfigureAwait(false);
                return started is QubesProtocol.Refused refused
                    ? new QrexecRoute.Denied($"cannot start {qube.Name}: {refused.Error.Message}")
                    : new QrexecRoute.Allowed(qube.Name, Nothing);
        }
    }

    private async Task<QrexecRoute> DisposableAsync(string template, Caller caller, CancellationToken ct)
    {
        if (pool is not null && await pool.TakeAsync(template, ct).ConfigureAwait(false) is { } preloaded)
        {
            // Handed out paused: the service is launched into it first, then it is thawed (QrexecRoute.Allowed.Launched).
            return new QrexecRoute.Allowed(preloaded, _ => KillAsync(preloaded)) { Launched = c => pool.UnpauseTakenAsync(preloaded, c) };
        }
        var created = await SendAsync(new QubesProtocol.CreateDisposable(template.Length == 0 ? caller.Name : template, caller), ct).ConfigureAwait(false);
        if (created is not QubesProtocol.Done { Output: var name })
            return new QrexecRoute.Denied($"cannot create a disposable of {template}: {((QubesProtocol.Refused)created).Error.Message}");
        var started = await SendAsync(new QubesProtocol.StartQube(name, caller), ct).ConfigureAwait(false);
        if (started is QubesProtocol.Refused refused)
        {
            // A disposable that failed to start is removed by the supervisor (qubes-semantics §3.4).
            return new QrexecRoute.Denied($"cannot start disposable {name}: {refused.Error.Message}");
        }
        return new QrexecRoute.Allowed(name, _ => KillAsync(name));
    }

    /// <summary>The disposable's call is over: killed (nothing of it is kept), then removed by the supervisor (auto_cleanup).</summary>
    private Task KillAsync(string name) => SendAsync(new QubesProtocol.KillQube(name, Caller.Dom0), CancellationToken.None);

    private async Task<string?> DefaultDispVmAsync(CancellationToken ct)
    {
        var state = await SnapshotAsync(ct).ConfigureAwait(false);
        return state.Effective(state.Get(CollectionState.AdminName), "default_dispvm");
    }

    private async Task<CollectionState> SnapshotAsync(CancellationToken ct) =>
        (await qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), timeout, ct).ConfigureAwait(false)).State;

    private Task<QubesProtocol.CommandResult> SendAsync(QubesProtocol.IQubesCommand command, CancellationToken ct) =>
        qubes.Ask<QubesProtocol.CommandResult>(command, timeout, ct);
}
