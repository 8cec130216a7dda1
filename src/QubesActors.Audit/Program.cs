using QubesActors.Audit;

// Ctrl-C cancels the running command (its token); a second Ctrl-C is left to the default handler.
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (cts.IsCancellationRequested)
        return;
    e.Cancel = true;
    cts.Cancel();
};
return await AuditApp.RunAsync(args, AuditContext.FromEnvironment(), cts.Token).ConfigureAwait(false);
