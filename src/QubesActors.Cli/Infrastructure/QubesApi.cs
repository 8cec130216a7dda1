using System.Net.Sockets;
using System.Runtime.CompilerServices;
using QubesActors.AdminApi.Client;
using QubesActors.AdminApi.Wire;

namespace QubesActors.Cli.Infrastructure;

/// <summary>One row of admin.vm.List.</summary>
public sealed record QubeEntry(string Name, string Class, string State, string Uuid);

/// <summary>One property as admin.vm.property.Get/GetAll report it.</summary>
public sealed record PropertyValue(bool IsDefault, string Type, string Value)
{
    public static PropertyValue Parse(string text)
    {
        // "default=<True|False> type=<t> <value>"; the value may be empty or contain spaces.
        var parts = text.Split(' ', 3);
        if (parts.Length < 3 || !parts[0].StartsWith("default=", StringComparison.Ordinal) || !parts[1].StartsWith("type=", StringComparison.Ordinal))
            throw new QvmRuntimeException($"unexpected property answer from qubesd: '{Terminal.Sanitize(text)}'");
        return new PropertyValue(parts[0] == "default=True", parts[1]["type=".Length..], parts[2]);
    }
}

/// <summary>
/// The Admin API as the commands use it: ok content as text, exception frames as <see cref="QubesApiException"/>,
/// connection failures as <see cref="QubesdUnreachableException"/>.
/// </summary>
public sealed class QubesApi(string socketPath)
{
    private readonly AdminClient _client = new(socketPath);

    public string SocketPath => socketPath;

    /// <summary>The raw answer (ok or exception frame); only an unreachable daemon throws.</summary>
    public async Task<AdminResponse> SendAsync(string method, string dest, string arg = "", string? payload = null, CancellationToken ct = default)
    {
        try
        {
            return await _client.CallAsync(method, dest, arg, payload, ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new QubesdUnreachableException(socketPath, e);
        }
    }

    public async Task<string> CallAsync(string method, string dest, string arg = "", string? payload = null, CancellationToken ct = default) =>
        await SendAsync(method, dest, arg, payload, ct).ConfigureAwait(false) switch
        {
            AdminResponse.Ok ok => ok.Text,
            AdminResponse.Error { ClassName: "ProtocolError", Message: "no such method" } => throw new QubesApiException("ProtocolError", $"no such method: this qubesd does not implement {method}"),
            AdminResponse.Error e => throw new QubesApiException(e.ClassName, e.Message),
            var other => throw new QvmRuntimeException($"unexpected answer from qubesd: {other}"),
        };

    public async Task<IReadOnlyList<QubeEntry>> ListAsync(CancellationToken ct, string dest = "dom0")
    {
        var text = await CallAsync("admin.vm.List", dest, ct: ct).ConfigureAwait(false);
        var list = new List<QubeEntry>();
        foreach (var line in Lines(text))
        {
            var fields = line.Split(' ');
            string Field(string key) => fields.Skip(1).FirstOrDefault(f => f.StartsWith(key + "=", StringComparison.Ordinal))?[(key.Length + 1)..] ?? "";
            list.Add(new QubeEntry(fields[0], Field("class"), Field("state"), Field("uuid")));
        }
        return list;
    }

    public async Task<IReadOnlyDictionary<string, PropertyValue>> GetAllAsync(string dest, CancellationToken ct, bool global = false)
    {
        var text = await CallAsync(global ? "admin.property.GetAll" : "admin.vm.property.GetAll", dest, ct: ct).ConfigureAwait(false);
        var result = new Dictionary<string, PropertyValue>(StringComparer.Ordinal);
        foreach (var line in Lines(text))
        {
            var space = line.IndexOf(' ');
            if (space < 0)
                continue;
            result[line[..space]] = PropertyValue.Parse(Unescape(line[(space + 1)..]));
        }
        return result;
    }

    public async Task<PropertyValue> GetAsync(string dest, string property, CancellationToken ct, bool global = false) =>
        PropertyValue.Parse(await CallAsync(global ? "admin.property.Get" : "admin.vm.property.Get", dest, property, ct: ct).ConfigureAwait(false));

    public async Task<IReadOnlyList<string>> FeatureNamesAsync(string vm, CancellationToken ct) =>
        Lines(await CallAsync("admin.vm.feature.List", vm, ct: ct).ConfigureAwait(false));

    /// <summary>A feature's value, or null when it is not set.</summary>
    public async Task<string?> FeatureAsync(string vm, string feature, CancellationToken ct)
    {
        try
        {
            return await CallAsync("admin.vm.feature.Get", vm, feature, ct: ct).ConfigureAwait(false);
        }
        catch (QubesApiException e) when (e.ClassName == "QubesFeatureNotFoundError")
        {
            return null;
        }
    }

    /// <summary>admin.Events frames (connection-established first) until the stream ends or <paramref name="ct"/> fires.</summary>
    public async IAsyncEnumerable<AdminResponse> StreamAsync(string method, string dest, string arg, string? payload, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var frame in FrameStream.ReadAsync(socketPath, method, dest, arg, payload, ct).ConfigureAwait(false))
            yield return frame;
    }

    public static IReadOnlyList<string> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>GetAll escapes one property per line: <c>\\</c> and <c>\n</c>.</summary>
    public static string Unescape(string value)
    {
        if (!value.Contains('\\'))
            return value;
        var sb = new System.Text.StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length)
            {
                var next = value[++i];
                sb.Append(next switch { 'n' => '\n', _ => next });
            }
            else
            {
                sb.Append(value[i]);
            }
        }
        return sb.ToString();
    }
}
