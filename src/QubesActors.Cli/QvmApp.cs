using System.CommandLine;

namespace QubesActors.Cli;

/// <summary>The qvm command tree. One-shot runs parse argv; <c>qvm shell</c> parses each line against the same tree.</summary>
public static class QvmApp
{
    public static RootCommand Build(QvmContext context)
    {
        var root = new RootCommand("qvm: manage qubes through qubesd's Admin API");
        // Commands are added here, one static class per command under Commands/ and Shell/.
        root.Subcommands.Add(ShellCommand.Create(context));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, QvmContext context, CancellationToken ct = default)
    {
        var root = Build(context);
        return await root.Parse(args).InvokeAsync(cancellationToken: ct).ConfigureAwait(false);
    }
}
