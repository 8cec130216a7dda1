using QubesActors.Cli;

// Ctrl-C cancels the running command (its token); a second Ctrl-C is left to the default handler and ends the process.
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (cts.IsCancellationRequested)
        return;
    e.Cancel = true;
    cts.Cancel();
};
return await QvmApp.RunAsync(args, QvmContext.FromEnvironment(), cts.Token).ConfigureAwait(false);
