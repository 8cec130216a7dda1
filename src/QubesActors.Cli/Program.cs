using QubesActors.Cli;

return await QvmApp.RunAsync(args, QvmContext.FromEnvironment()).ConfigureAwait(false);
