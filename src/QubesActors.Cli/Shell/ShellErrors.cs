using System.Net.Sockets;
using System.Reflection;

namespace QubesActors.Cli.Shell;

/// <summary>One line for the user from whatever a command threw: what went wrong, not a stack trace.</summary>
public static class ShellErrors
{
    public static string Describe(Exception exception, string socketPath)
    {
        var e = Unwrap(exception);
        return e switch
        {
            ShellSyntaxException => $"syntax error: {e.Message}",
            OperationCanceledException => "cancelled",
            SocketException s when s.SocketErrorCode is SocketError.AccessDenied => $"cannot reach qubesd at {socketPath}: permission denied",
            SocketException s => $"cannot reach qubesd at {socketPath}: {s.Message}",
            IOException or InvalidDataException => $"qubesd connection failed: {e.Message}",
            _ when string.IsNullOrWhiteSpace(e.Message) => $"error: {e.GetType().Name}",
            _ => $"error: {e.Message}",
        };
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a:
                    e = a.InnerExceptions[0];
                    continue;
                case TargetInvocationException { InnerException: { } inner }:
                    e = inner;
                    continue;
                // A connection failure is often wrapped once by the caller; the socket error says more.
                case IOException { InnerException: SocketException s }:
                    e = s;
                    continue;
                default:
                    return e;
            }
        }
    }
}
