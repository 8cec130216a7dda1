using System.CommandLine;
using QubesActors.AdminApi.Wire;
using QubesActors.Cli.Infrastructure;
using Spectre.Console;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm start (qvm-start): starts qubes one after another. qubesd starts a halted netvm chain first; while it does,
/// the start shows which qube of the chain is coming up (a Spectre status on a terminal, plain lines on stderr
/// otherwise), read from admin.Events.
/// </summary>
public static class StartCommand
{
    public static Command Create(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var skip = new Option<bool>("--skip-if-running") { Description = "Do not fail for a qube that is already running" };
        var command = new Command("start", "Start qubes (qvm-start)");
        selection.AddTo(command);
        command.Options.Add(skip);
        command.SetQvmAction(context, async inv =>
        {
            var qubes = await selection.ResolveAsync(inv).ConfigureAwait(false);
            var failed = false;
            foreach (var qube in qubes)
            {
                if (qube.State != "Halted")
                {
                    if (inv.Get(skip) || inv.Get(selection.All))
                        continue;
                    inv.BulkError($"Domain is already running: '{qube.Name}'");
                    failed = true;
                    continue;
                }
                try
                {
                    await StartAsync(inv, qube.Name).ConfigureAwait(false);
                }
                catch (QubesApiException e)
                {
                    inv.BulkError($"Starting qube failed: {qube.Name}: {e.Message}");
                    failed = true;
                }
            }
            return failed ? Qvm.ExitError : Qvm.ExitOk;
        });
        return command;
    }

    /// <summary>Starts one qube; with progress when its netvm chain has halted qubes that qubesd will start first.</summary>
    public static async Task StartAsync(Invocation inv, string name)
    {
        var chain = await HaltedNetvmChainAsync(inv, name).ConfigureAwait(false);
        if (chain.Count == 0)
        {
            await inv.Api.CallAsync("admin.vm.Start", name, ct: inv.Ct).ConfigureAwait(false);
            return;
        }
        var order = string.Join(" → ", chain.AsEnumerable().Reverse().Append(name));
        if (inv.Interactive)
        {
            await inv.Out.Status().StartAsync(Markup.Escape($"Starting {order}"), async status =>
                await StartWatchingAsync(inv, name, line => status.Status(Markup.Escape(line))).ConfigureAwait(false)).ConfigureAwait(false);
        }
        else
        {
            inv.Error.ErrorLine($"Starting {order}");
            await StartWatchingAsync(inv, name, inv.Error.ErrorLine).ConfigureAwait(false);
        }
    }

    private static async Task StartWatchingAsync(Invocation inv, string name, Action<string> report)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(inv.Ct);
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Set when the qube's own start event has been read: the events before it are in the stream ahead of it.
        var seenOwnStart = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = Task.Run(async () =>
        {
            try
            {
                await foreach (var frame in inv.Api.StreamAsync("admin.Events", "dom0", "", null, stop.Token).ConfigureAwait(false))
                {
                    subscribed.TrySetResult();
                    if (frame is not AdminResponse.Event e)
                        break;
                    switch (e.Name)
                    {
                        case "domain-pre-start":
                            report($"Starting {e.Subject}...");
                            break;
                        case "domain-start":
                            report($"{e.Subject} is running");
                            break;
                        case "domain-start-failed":
                            report($"{e.Subject} failed to start: {e.Argument("reason")}");
                            break;
                    }
                    if (e.Subject == name && e.Name is "domain-start" or "domain-start-failed")
                        seenOwnStart.TrySetResult();
                }
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
            }
            finally
            {
                subscribed.TrySetResult();
            }
        }, CancellationToken.None);
        try
        {
            // Subscribe first so the chain's events are not missed; the watcher's own failure must not block the start.
            await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(5), inv.Ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        try
        {
            await inv.Api.CallAsync("admin.vm.Start", name, ct: inv.Ct).ConfigureAwait(false);
            // The answer can overtake the last events still unread in the stream: report them before stopping.
            await seenOwnStart.Task.WaitAsync(TimeSpan.FromSeconds(2), inv.Ct).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await watcher.ConfigureAwait(false);
        }
    }

    /// <summary>The netvms qubesd will have to start first: up the netvm chain while the netvm is halted.</summary>
    private static async Task<List<string>> HaltedNetvmChainAsync(Invocation inv, string name)
    {
        var states = (await inv.Api.ListAsync(inv.Ct).ConfigureAwait(false)).ToDictionary(q => q.Name, q => q.State, StringComparer.Ordinal);
        var chain = new List<string>();
        var current = name;
        while (true)
        {
            string netvm;
            try
            {
                netvm = (await inv.Api.GetAsync(current, "netvm", inv.Ct).ConfigureAwait(false)).Value;
            }
            catch (QubesApiException)
            {
                break;
            }
            if (netvm.Length == 0 || chain.Contains(netvm) || netvm == name || states.GetValueOrDefault(netvm) != "Halted")
                break;
            chain.Add(netvm);
            current = netvm;
        }
        return chain;
    }
}
