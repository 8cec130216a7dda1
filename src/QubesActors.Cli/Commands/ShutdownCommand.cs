using System.CommandLine;
using QubesActors.Cli.Infrastructure;
using Spectre.Console;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm shutdown (qvm-shutdown, docs/qubes-semantics.md §3.5): admin.vm.Shutdown to every selected active qube at
/// once; <c>--all</c> forces unless <c>--exclude</c> is given; with <c>--wait</c> qubes refused as in use are retried
/// in rounds (clients first, then their netvms) and timed-out ones retried once, then killed. Exit code = number of
/// qubes that failed.
/// </summary>
public static class ShutdownCommand
{
    private enum Outcome { Done, InUse, TimedOut, Failed }

    public static Command Create(QvmContext context)
    {
        var selection = new Qvm.Selection();
        var wait = new Option<bool>("--wait") { Description = "Wait until the qubes are halted (up to their shutdown_timeout)" };
        var force = new Option<bool>("--force") { Description = "Shut down even netvms whose clients are running" };
        var timeout = new Option<int?>("--timeout") { Description = "Deprecated: implies --wait (qubesd waits shutdown_timeout)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be shut down" };
        var command = new Command("shutdown", "Shut qubes down gracefully (qvm-shutdown)");
        selection.AddTo(command);
        command.Options.Add(wait);
        command.Options.Add(force);
        command.Options.Add(timeout);
        command.Options.Add(dryRun);
        command.SetQvmAction(context, async inv =>
        {
            var qubes = await selection.ResolveAsync(inv).ConfigureAwait(false);
            var isForce = inv.Get(force) || (inv.Get(selection.All) && (inv.Get(selection.Exclude)?.Length ?? 0) == 0);
            var isWait = inv.Get(wait) || inv.Get(timeout) is not null;
            var targets = qubes.Where(q => q.State != "Halted").Select(q => q.Name).ToList();
            if (inv.Get(dryRun))
            {
                foreach (var name in targets)
                    inv.Out.WriteCells($"would shut down {name}{(isForce ? " (force)" : "")}");
                return Qvm.ExitOk;
            }
            var arg = (isForce, isWait) switch
            {
                (true, true) => "force+wait",
                (true, false) => "force",
                (false, true) => "wait",
                _ => "",
            };
            if (isWait && targets.Count > 0 && inv.Interactive)
            {
                var failedCount = 0;
                await inv.Out.Progress().AutoClear(true).StartAsync(async progress =>
                {
                    var task = progress.AddTask(Markup.Escape($"Shutting down {targets.Count} qube(s)"), maxValue: targets.Count);
                    failedCount = await RunAsync(inv, targets, arg, isWait, _ => task.Increment(1)).ConfigureAwait(false);
                }).ConfigureAwait(false);
                return failedCount;
            }
            return await RunAsync(inv, targets, arg, isWait, isWait && targets.Count > 1 ? name => inv.Error.ErrorLine($"Halted: {name}") : _ => { })
                .ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(Invocation inv, List<string> targets, string arg, bool wait, Action<string> halted)
    {
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        var results = await RoundAsync(inv, targets, arg, halted, errors).ConfigureAwait(false);
        var failed = results.Where(r => r.Value == Outcome.Failed).Select(r => r.Key).ToList();

        // Netvms refused because clients were still up: retry as a group while a round makes progress.
        var inUse = results.Where(r => r.Value == Outcome.InUse).Select(r => r.Key).ToList();
        var timedOut = results.Where(r => r.Value == Outcome.TimedOut).Select(r => r.Key).ToList();
        if (wait)
        {
            for (var round = 0; inUse.Count > 0 && round < inUse.Count; round++)
            {
                inv.BulkError($"Retrying shutdown of qubes that were in use: {string.Join(", ", inUse)}");
                var retry = await RoundAsync(inv, inUse, arg, halted, errors).ConfigureAwait(false);
                failed.AddRange(retry.Where(r => r.Value == Outcome.Failed).Select(r => r.Key));
                timedOut.AddRange(retry.Where(r => r.Value == Outcome.TimedOut).Select(r => r.Key));
                var still = retry.Where(r => r.Value == Outcome.InUse).Select(r => r.Key).ToList();
                var progressed = still.Count < inUse.Count;
                inUse = still;
                if (!progressed)
                    break;
            }
            if (timedOut.Count > 0)
            {
                var retry = await RoundAsync(inv, timedOut, arg, halted, errors).ConfigureAwait(false);
                failed.AddRange(retry.Where(r => r.Value is Outcome.Failed or Outcome.InUse).Select(r => r.Key));
                var kill = retry.Where(r => r.Value == Outcome.TimedOut).Select(r => r.Key).ToList();
                if (kill.Count > 0)
                {
                    inv.BulkError($"Killing timed out qubes: {string.Join(", ", kill)}");
                    foreach (var name in kill)
                    {
                        try
                        {
                            await inv.Api.CallAsync("admin.vm.Kill", name, ct: inv.Ct).ConfigureAwait(false);
                            halted(name);
                        }
                        catch (QubesApiException e)
                        {
                            errors[name] = e.Message;
                            failed.Add(name);
                        }
                    }
                }
            }
        }
        failed.AddRange(inUse);
        if (!wait)
            failed.AddRange(timedOut);
        foreach (var name in targets.Where(failed.Contains))
            inv.BulkError($"Failed to shut down: {name}: {errors.GetValueOrDefault(name)}");
        return failed.Distinct().Count();
    }

    private static async Task<Dictionary<string, Outcome>> RoundAsync(Invocation inv, IReadOnlyList<string> names, string arg, Action<string> halted,
        Dictionary<string, string> errors)
    {
        var outcomes = await Task.WhenAll(names.Select(async name =>
        {
            try
            {
                await inv.Api.CallAsync("admin.vm.Shutdown", name, arg, ct: inv.Ct).ConfigureAwait(false);
                if (arg.Contains("wait", StringComparison.Ordinal))
                    lock (errors)
                        halted(name);
                return (name, Outcome.Done);
            }
            catch (QubesApiException e) when (e.ClassName == "QubesVMNotStartedError")
            {
                // Halted meanwhile: nothing left to do.
                lock (errors)
                    halted(name);
                return (name, Outcome.Done);
            }
            catch (QubesApiException e)
            {
                lock (errors)
                    errors[name] = e.Message;
                return (name, e.ClassName switch
                {
                    "QubesVMInUseError" => Outcome.InUse,
                    "QubesVMShutdownTimeoutError" => Outcome.TimedOut,
                    _ => Outcome.Failed,
                });
            }
        })).ConfigureAwait(false);
        return outcomes.ToDictionary(o => o.name, o => o.Item2, StringComparer.Ordinal);
    }
}
