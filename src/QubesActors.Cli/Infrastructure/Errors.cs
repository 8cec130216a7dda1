namespace QubesActors.Cli.Infrastructure;

/// <summary>A command-line mistake (argparse's <c>parser.error</c>): <c>qvm CMD: error: MSG</c>, exit 2.</summary>
public sealed class QvmUsageException(string message) : Exception(message);

/// <summary>A runtime failure the command reports as <c>qvm CMD: error: MSG</c> with exit 1.</summary>
public sealed class QvmRuntimeException(string message) : Exception(message);

/// <summary>An exception frame from qubesd: its class name and message, as qubesadmin raises them.</summary>
public sealed class QubesApiException(string className, string message) : Exception(message)
{
    public string ClassName { get; } = className;

    /// <summary>ProtocolError("no such method"): the daemon does not implement the call (yet).</summary>
    public bool IsNoSuchMethod => ClassName == "ProtocolError" && Message.StartsWith("no such method", StringComparison.Ordinal);
}

/// <summary>qubesd could not be reached on its socket.</summary>
public sealed class QubesdUnreachableException(string socketPath, Exception inner)
    : Exception($"cannot connect to qubesd at '{socketPath}' ({inner.Message}); is it running? Use --socket PATH or set {QvmContext.SocketVariable}", inner);
