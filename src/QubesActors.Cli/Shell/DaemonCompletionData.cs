using System.Collections.Concurrent;
using QubesActors.AdminApi.Client;
using QubesActors.AdminApi.Wire;

namespace QubesActors.Cli.Shell;

/// <summary>
/// Completion data from qubesd. Answers are kept for <see cref="Ttl"/> (a Tab is pressed several times in a row)
/// and dropped early by events when <c>watch</c> runs. A call that fails or takes longer than <see cref="CallTimeout"/>
/// completes nothing: a Tab must never hang the prompt or end the session.
/// </summary>
public sealed class DaemonCompletionData(Func<AdminClient> client, Func<DateTime>? clock = null) : ICompletionData
{
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Qubes OS's labels, for a daemon that does not implement admin.label.List.</summary>
    public static readonly IReadOnlyList<string> StandardLabels = ["red", "orange", "yellow", "green", "gray", "blue", "purple", "black"];

    private readonly Func<DateTime> _clock = clock ?? (() => DateTime.UtcNow);
    private readonly ConcurrentDictionary<string, (DateTime At, string? Answer)> _cache = new(StringComparer.Ordinal);

    public IReadOnlyList<string> QubeNames() =>
        Lines(Call("admin.vm.List", "dom0")).Select(l => l.Split(' ', 2)[0]).Where(n => n.Length > 0).ToList();

    public IReadOnlyList<string> PropertyNames(string qube) => Lines(Call("admin.vm.property.List", qube));

    public PropertyInfo? Property(string qube, string property) =>
        Call("admin.vm.property.Get", qube, property) is { } answer ? PropertyInfo.Parse(answer) : null;

    public IReadOnlyList<string> GlobalPropertyNames() => Lines(Call("admin.property.List", "dom0"));

    public PropertyInfo? GlobalProperty(string property) =>
        Call("admin.property.Get", "dom0", property) is { } answer ? PropertyInfo.Parse(answer) : null;

    public IReadOnlyList<string> Labels() => Call("admin.label.List", "dom0") is { } answer ? Lines(answer) : StandardLabels;

    public IReadOnlyList<string> QubeClasses() => Lines(Call("admin.vmclass.List", "dom0"));

    /// <summary>Drops what an event makes stale: the qube list on add/remove, property answers on any property change.</summary>
    public void Observe(AdminResponse.Event e)
    {
        if (e.Name is "domain-add" or "domain-delete")
            Forget("admin.vm.List");
        if (e.Name.StartsWith("property-", StringComparison.Ordinal))
        {
            Forget("admin.vm.property.Get");
            Forget("admin.property.Get");
        }
        if (e.Name.StartsWith("label-", StringComparison.Ordinal))
            Forget("admin.label.List");
    }

    public void Clear() => _cache.Clear();

    private void Forget(string method)
    {
        foreach (var key in _cache.Keys.Where(k => k.StartsWith(method + " ", StringComparison.Ordinal)))
            _cache.TryRemove(key, out _);
    }

    /// <summary>The ok text of a call, or null for an error, a timeout or an unreachable daemon (cached alike).</summary>
    private string? Call(string method, string dest, string arg = "")
    {
        var key = $"{method} {dest} {arg}";
        var now = _clock();
        if (_cache.TryGetValue(key, out var hit) && now - hit.At < Ttl)
            return hit.Answer;
        string? answer;
        try
        {
            using var cts = new CancellationTokenSource(CallTimeout);
            // Completion runs inside a key handler, which is synchronous; the console app has no sync context to deadlock.
            var response = client().CallAsync(method, dest, arg, ct: cts.Token).WaitAsync(CallTimeout).GetAwaiter().GetResult();
            answer = response is AdminResponse.Ok ok ? ok.Text : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            answer = null;
        }
        _cache[key] = (now, answer);
        return answer;
    }

    private static List<string> Lines(string? text) =>
        text is null ? [] : [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
