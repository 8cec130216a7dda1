using System.Text;
using QubesActors.Core.Policy;

namespace QubesActors.Runtime.Policy;

/// <summary>
/// A qrexec-policy-daemon request (§7): <c>key=value</c> lines up to an empty line (or EOF); keys <c>source</c>,
/// <c>intended_target</c>, <c>service_and_arg</c> required, <c>assume_yes_for_ask</c>, <c>just_evaluate</c>
/// (<c>yes</c>/<c>no</c>) and <c>requested_source</c> optional. Anything else (unknown or repeated key, a line without
/// <c>=</c>, non-ASCII, a bad yes/no) makes the daemon close the connection without an answer: <see cref="Error"/>.
/// </summary>
public sealed record PolicySocketRequest(PolicyRequest Request, PolicyCallOptions Options, string ServiceAndArg)
{
    private static readonly string[] Required = ["source", "intended_target", "service_and_arg"];
    private static readonly string[] Known = [.. Required, "assume_yes_for_ask", "just_evaluate", "requested_source"];

    /// <summary>Where the request ends in <paramref name="data"/> (after the empty line), or -1 when more is needed.</summary>
    public static int EndOf(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0 && data[0] == (byte)'\n')
            return 1;
        var end = data.IndexOf("\n\n"u8);
        return end < 0 ? -1 : end + 2;
    }

    /// <summary>Parses a request (the bytes up to the empty line, or all that came before EOF); null with the reason when upstream would abort.</summary>
    public static PolicySocketRequest? Parse(ReadOnlySpan<byte> untrusted, out string? error)
    {
        foreach (var b in untrusted)
            if (b > 0x7f)
            {
                error = "request is not ASCII";
                return null;
            }
        var args = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Encoding.ASCII.GetString(untrusted).Split('\n'))
        {
            if (line.Length == 0)
                break;
            var eq = line.IndexOf('=');
            if (eq < 0)
            {
                error = "line without '='";
                return null;
            }
            var (key, value) = (line[..eq], line[(eq + 1)..]);
            if (args.ContainsKey(key))
            {
                error = $"duplicate argument {key}";
                return null;
            }
            if (!Known.Contains(key))
            {
                error = $"unknown argument {key}";
                return null;
            }
            if (key is "assume_yes_for_ask" or "just_evaluate" && value is not ("yes" or "no"))
            {
                error = $"invalid bool value {value} for argument {key}";
                return null;
            }
            args[key] = value;
        }
        if (!Required.All(args.ContainsKey))
        {
            error = "required argument missing";
            return null;
        }
        error = null;
        var serviceAndArg = args["service_and_arg"];
        return new PolicySocketRequest(
            PolicyRequest.Of(serviceAndArg, args["source"], args["intended_target"]),
            new PolicyCallOptions(
                JustEvaluate: args.GetValueOrDefault("just_evaluate") == "yes",
                AssumeYesForAsk: args.GetValueOrDefault("assume_yes_for_ask") == "yes",
                RequestedSource: args.GetValueOrDefault("requested_source")),
            serviceAndArg);
    }
}
