using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace QubesActors.Cli.Infrastructure;

/// <summary>What one command action runs with: the parse, the API on the chosen socket, output, cancellation.</summary>
public sealed class Invocation(ParseResult parse, QvmContext context, CancellationToken ct)
{
    public ParseResult Parse { get; } = parse;
    public QvmContext Context { get; } = context;
    public CancellationToken Ct { get; } = ct;
    public QubesApi Api { get; } = new(parse.GetValue<string?>(Qvm.SocketOptionName) is { Length: > 0 } s ? s : context.SocketPath);

    /// <summary>dom0's qrexec socket: --qrexec-socket, else $QUBESD_QREXEC_SOCKET, else qrexec.sock beside the Admin API socket.</summary>
    public string QrexecSocketPath =>
        Parse.GetValue<string?>(Qvm.QrexecSocketOptionName) is { Length: > 0 } s ? s
        : Context.QrexecSocketPath is { Length: > 0 } c ? c
        : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Api.SocketPath)) ?? ".", QvmContext.DefaultQrexecSocketName);

    public IAnsiConsole Out => Context.Out;
    public TextWriter Error => Context.Error;

    /// <summary>"qvm ls", "qvm device usb attach": what errors are prefixed with.</summary>
    public string CommandPath => Qvm.PathOf(Parse);

    /// <summary>Spectre live displays (status, progress) only on an interactive terminal.</summary>
    public bool Interactive => Out.Profile.Capabilities.Interactive;

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);
    public T? Get<T>(Argument<T> argument) => Parse.GetValue(argument);

    public bool Json(Option<string> output) => Parse.GetValue(output) == "json";

    /// <summary>A per-qube failure line of the bulk tools: <c>Error: MSG</c> on stderr.</summary>
    public void BulkError(string message) => Error.ErrorLine("Error: " + message);

    /// <summary>One JSON document on stdout.</summary>
    public void WriteJson(Action<Utf8JsonWriter> write, bool indented = true)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
            write(writer);
        Out.WriteText(System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n");
    }

    /// <summary>admin.vm.List, then every name checked: unknown names are argparse errors (exit 2).</summary>
    public async Task<IReadOnlyList<QubeEntry>> ResolveAsync(IEnumerable<string> names)
    {
        var all = await Api.ListAsync(Ct).ConfigureAwait(false);
        var byName = all.ToDictionary(q => q.Name, StringComparer.Ordinal);
        var result = new List<QubeEntry>();
        foreach (var name in names)
        {
            RejectOption(name);
            if (!byName.TryGetValue(name, out var entry))
                throw new QvmUsageException($"no such domain: '{name}'");
            if (!result.Contains(entry))
                result.Add(entry);
        }
        return result;
    }

    /// <summary>An unknown option lands in a name argument; say so as argparse does rather than "no such domain".</summary>
    public static void RejectOption(string name)
    {
        if (name.StartsWith('-'))
            throw new QvmUsageException($"unrecognized arguments: {name}");
    }

    public async Task<QubeEntry> ResolveAsync(string name) => (await ResolveAsync([name]).ConfigureAwait(false))[0];
}
