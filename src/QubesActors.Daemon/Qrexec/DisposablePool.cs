using Akka.Actor;
using Microsoft.Extensions.Logging;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;

namespace QubesActors.Daemon.Qrexec;

/// <summary>
/// Preloaded disposables, as Qubes 4.3: a disposable template with the feature <c>preload-dispvm-max=N</c> keeps N
/// disposables created, started and paused (frozen: no CPU, their memory kept); a <c>@dispvm</c> call takes one
/// (unpaused, no start on its path) and a replacement is made in the background. The preloaded ones are listed in
/// the template's feature <c>preload-dispvm</c> (space-separated names), so a restarted qubesd knows them again.
/// </summary>
public sealed class DisposablePool(IActorRef qubes, TimeSpan timeout, ILogger log) : IAsyncDisposable
{
    public const string MaxFeature = "preload-dispvm-max";
    public const string ListFeature = "preload-dispvm";
    private static readonly Caller Preloader = new(CollectionState.AdminName, Method: "preload-dispvm");

    private readonly SemaphoreSlim _gate = new(1, 1);
    // Handed out, still on the journal's list until ForgetTakenAsync (guarded by _gate).
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    /// <summary>How often the pool checks its templates without being woken (a feature changed by hand, a preloaded one gone).</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Parks the service launcher of a preloaded disposable's one call (QrexecServiceRunner.PrepareSlotAsync).</summary>
    public Func<string, CancellationToken, Task>? PrepareSlot { get; set; }

    /// <summary>How long after a hand-out the list is updated and a replacement started.</summary>
    public TimeSpan ReplaceAfter { get; init; } = TimeSpan.FromSeconds(1);

    public void Start() => _loop = Task.Run(LoopAsync);

    /// <summary>Refill now (after a take, a feature change).</summary>
    public void Wake() => _wake.Release();

    /// <summary>
    /// A preloaded disposable of <paramref name="template"/>, reserved for one call and still paused (the caller
    /// launches its service, then <see cref="UnpauseTakenAsync"/>); null when none is ready (the caller then creates
    /// one as without a pool).
    /// </summary>
    public async Task<string?> TakeAsync(string template, CancellationToken ct)
    {
        string? ready;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var state = await SnapshotAsync(ct).ConfigureAwait(false);
            if (state.Find(template) is not { } tpl)
                return null;
            ready = Listed(tpl).FirstOrDefault(n => !_taken.Contains(n) && state.Find(n) is { Class: QubeClass.DispVM, Power: PowerState.Paused });
            if (ready is null)
                return null;
            // Reserved in memory: the journal's list is updated after the hand-out, off the call's path. A qubesd
            // killed in between finds it listed but running, which the refill drops: never handed out twice.
            _taken.Add(ready);
        }
        finally
        {
            _gate.Release();
        }
        // The list and the replacement wait until the call has got going: on 2 cores, starting a disposable beside
        // the call being served would slow exactly the call the pool is there to speed up.
        _ = Task.Delay(ReplaceAfter, _stopping.Token).ContinueWith(_ => ForgetTakenAsync(template, ready), CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default).Unwrap();
        return ready;
    }

    /// <summary>
    /// Unpauses a taken disposable, answered as soon as it is thawed (its record follows). A refusal kills it and
    /// throws: the call fails rather than run in a disposable whose state qubesd does not know.
    /// </summary>
    public async Task UnpauseTakenAsync(string name, CancellationToken ct)
    {
        var unpaused = await SendAsync(new QubesProtocol.UnpauseQube(name, Preloader, AcknowledgeWhenThawed: true), ct).ConfigureAwait(false);
        if (unpaused is QubesProtocol.Refused refused)
        {
            log.LogWarning("preloaded disposable {Name} cannot be unpaused: {Error}", name, refused.Error.Message);
            _ = SendAsync(new QubesProtocol.KillQube(name, Preloader), CancellationToken.None);
            throw new InvalidOperationException($"preloaded disposable {name} cannot be unpaused: {refused.Error.Message}");
        }
    }

    /// <summary>A taken disposable off the list and no longer hidden (Qubes hides preloaded ones with internal=1); then the refill.</summary>
    private async Task ForgetTakenAsync(string template, string taken)
    {
        await _gate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        try
        {
            await SendAsync(new QubesProtocol.RemoveFeature(taken, "internal", Preloader), _stopping.Token).ConfigureAwait(false);
            if ((await SnapshotAsync(_stopping.Token).ConfigureAwait(false)).Find(template) is { } tpl)
                await SetListAsync(template, Listed(tpl).Where(n => n != taken), _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or InvalidOperationException)
        {
            log.LogWarning("preloaded disposable {Name} taken, but the list of {Template} not updated: {Error}", taken, template, e.Message);
        }
        finally
        {
            _taken.Remove(taken);
            _gate.Release();
            Wake();
        }
    }

    private async Task LoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await RefillAsync(_stopping.Token).ConfigureAwait(false);
                await _wake.WaitAsync(Interval, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or InvalidOperationException)
            {
                log.LogWarning("preloading disposables: {Error}", e.Message);
                await Task.Delay(Interval, _stopping.Token).ConfigureAwait(false);
            }
        }
    }

    /// <summary>For each disposable template: the listed ones that are gone are dropped, extra ones killed, missing ones made.</summary>
    private async Task RefillAsync(CancellationToken ct)
    {
        var state = await SnapshotAsync(ct).ConfigureAwait(false);
        foreach (var tpl in state.Qubes.Values.Where(q => q.Features.ContainsKey(MaxFeature) || q.Features.ContainsKey(ListFeature)).ToList())
        {
            var max = int.TryParse(tpl.Features.GetValueOrDefault(MaxFeature), out var m) && m > 0 && state.EffectiveBool(tpl, "template_for_dispvms") ? m : 0;
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                state = await SnapshotAsync(ct).ConfigureAwait(false);
                if (state.Find(tpl.Name) is not { } current)
                    continue;
                // One was just handed out: its list update and replacement come with ForgetTakenAsync.
                if (Listed(current).Any(_taken.Contains))
                    continue;
                var alive = Listed(current).Where(n => !_taken.Contains(n) && state.Find(n) is { Class: QubeClass.DispVM, Power: PowerState.Paused }).ToList();
                foreach (var extra in alive.Skip(max).ToList())
                {
                    alive.Remove(extra);
                    await SendAsync(new QubesProtocol.KillQube(extra, Preloader), ct).ConfigureAwait(false);
                }
                if (!alive.SequenceEqual(Listed(current)))
                    await SetListAsync(tpl.Name, alive, ct).ConfigureAwait(false);
                if (alive.Count >= max)
                    continue;
            }
            finally
            {
                _gate.Release();
            }
            // Made outside the gate: a take must not wait for a start.
            var name = await PreloadOneAsync(tpl.Name, ct).ConfigureAwait(false);
            if (name is null)
                continue;
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                state = await SnapshotAsync(ct).ConfigureAwait(false);
                if (state.Find(tpl.Name) is not { } now)
                    throw new InvalidOperationException($"disposable template {tpl.Name} is gone");
                await SetListAsync(tpl.Name, Listed(now).Append(name), ct).ConfigureAwait(false);
            }
            catch
            {
                // Not on the list, it would never be handed out nor cleaned: it goes (auto_cleanup removes it).
                await SendAsync(new QubesProtocol.KillQube(name, Preloader), CancellationToken.None).ConfigureAwait(false);
                throw;
            }
            finally
            {
                _gate.Release();
            }
            Wake(); // more may be missing
        }
    }

    private async Task<string?> PreloadOneAsync(string template, CancellationToken ct)
    {
        var created = await SendAsync(new QubesProtocol.CreateDisposable(template, Preloader), ct).ConfigureAwait(false);
        if (created is not QubesProtocol.Done { Output: var name })
        {
            log.LogWarning("cannot preload a disposable of {Template}: {Error}", template, ((QubesProtocol.Refused)created).Error.Message);
            return null;
        }
        foreach (var step in new QubesProtocol.IQubesCommand[]
                 {
                     new QubesProtocol.SetFeature(name, "internal", "1", Preloader),
                     new QubesProtocol.StartQube(name, Preloader),
                     new QubesProtocol.PauseQube(name, Preloader),
                 })
        {
            if (step is QubesProtocol.PauseQube && PrepareSlot is { } prepare)
            {
                try
                {
                    await prepare(name, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception
                                              or QubesActors.Sandbox.SandboxException)
                {
                    // The call will launch its service the usual way.
                    log.LogWarning("preloaded disposable {Name}: no parked service launcher: {Error}", name, e.Message);
                }
            }
            if (await SendAsync(step, ct).ConfigureAwait(false) is QubesProtocol.Refused refused)
            {
                log.LogWarning("cannot preload disposable {Name}: {Error}", name, refused.Error.Message);
                await SendAsync(new QubesProtocol.KillQube(name, Preloader), ct).ConfigureAwait(false);
                return null;
            }
        }
        return name;
    }

    private static List<string> Listed(QubeState template) =>
        [.. (template.Features.GetValueOrDefault(ListFeature) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)];

    /// <summary>Records the list; a refusal is an error (a pool that cannot record what it made would make more forever).</summary>
    private async Task SetListAsync(string template, IEnumerable<string> names, CancellationToken ct)
    {
        var value = string.Join(' ', names);
        var result = await SendAsync(value.Length == 0
            ? new QubesProtocol.RemoveFeature(template, ListFeature, Preloader)
            : new QubesProtocol.SetFeature(template, ListFeature, value, Preloader, Internal: true), ct).ConfigureAwait(false);
        if (result is QubesProtocol.Refused refused && !(value.Length == 0 && refused.Error is Core.Errors.QubesFeatureNotFoundError))
            throw new InvalidOperationException($"cannot record the preloaded disposables of {template}: {refused.Error.Message}");
    }

    private async Task<CollectionState> SnapshotAsync(CancellationToken ct) =>
        (await qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), timeout, ct).ConfigureAwait(false)).State;

    private Task<QubesProtocol.CommandResult> SendAsync(QubesProtocol.IQubesCommand command, CancellationToken ct) =>
        qubes.Ask<QubesProtocol.CommandResult>(command, timeout, ct);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
