using QubesActors.Cli.Infrastructure;
using QubesActors.Core.Model;

namespace QubesActors.Cli;

/// <summary>What <c>qvm shell</c> completes from: property names (Core's schema) and qube names (admin.vm.List).</summary>
public static class QvmCompletionSource
{
    /// <summary>Property names of qubes of <paramref name="qubeClass"/> (e.g. "AppVM"); every qube property if the class is unknown.</summary>
    public static IReadOnlyList<string> PropertyNames(string qubeClass) =>
        Enum.TryParse<QubeClass>(qubeClass, ignoreCase: false, out var cls)
            ? [.. QubeProperties.For(cls).Select(p => p.Name)]
            : [.. QubeProperties.All.Keys];

    public static IReadOnlyList<string> GlobalPropertyNames() => [.. GlobalProperties.All.Keys];

    /// <summary>Label names for <c>--label</c>.</summary>
    public static IReadOnlyList<string> LabelNames() => [.. Label.Standard.Select(l => l.Name)];

    /// <summary>Qube names from admin.vm.List on the context's socket, dom0 first as qubesd lists them.</summary>
    public static async Task<IReadOnlyList<string>> QubeNamesAsync(QvmContext context, CancellationToken ct) =>
        [.. (await new QubesApi(context.SocketPath).ListAsync(ct).ConfigureAwait(false)).Select(q => q.Name)];
}
