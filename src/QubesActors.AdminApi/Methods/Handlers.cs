using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text;
using QubesActors.Core.Model;
using QubesActors.Runtime.Actors;

namespace QubesActors.AdminApi.Methods;

/// <summary>Shared pieces of the handlers: sending a command and building the rows of the table.</summary>
internal static class Handlers
{
    public static async Task<AdminReply> Send(AdminCall call, QubesProtocol.IQubesCommand command, CancellationToken ct, TimeSpan? timeout = null, bool keepOutput = true)
    {
        var result = await call.Qubes.SendAsync(command, timeout ?? call.CommandTimeout, ct).ConfigureAwait(false);
        return result switch
        {
            QubesProtocol.Done done => new AdminReply.Ok(keepOutput ? done.Output : ""),
            QubesProtocol.Refused refused => new AdminReply.Failed(refused.Error),
            _ => throw new InvalidOperationException($"unexpected answer {result}"),
        };
    }

    public static Task<AdminReply> Ok(string content) => Task.FromResult<AdminReply>(new AdminReply.Ok(content));

    // Collection states are immutable and replaced on every change: an answer computed from one state holds until
    // the next change, so the large read answers (List, GetAll) are computed once per state and shared by every
    // caller until then (qvm-ls and GUI widgets poll them). They go away with their state.
    private static readonly ConditionalWeakTable<CollectionState, ConcurrentDictionary<string, AdminReply.Ok>> Answers = new();

    /// <summary>The answer <paramref name="compute"/> gives for <paramref name="key"/> in <paramref name="state"/>, kept encoded.</summary>
    public static Task<AdminReply> Cached(CollectionState state, string key, Func<CollectionState, string> compute)
    {
        var answers = Answers.GetValue(state, static _ => new ConcurrentDictionary<string, AdminReply.Ok>(StringComparer.Ordinal));
        var answer = answers.GetOrAdd(key, static (_, arg) =>
        {
            var content = arg.compute(arg.state);
            return new AdminReply.Ok(content) { EncodedFrame = Wire.AdminFrames.EncodeOk(content) };
        }, (state, compute));
        return Task.FromResult<AdminReply>(answer);
    }

    /// <summary>Lines each ending in '\n' (upstream joins <c>'{}\n'</c> per item).</summary>
    public static string Lines(IEnumerable<string> lines)
    {
        var text = new StringBuilder();
        foreach (var line in lines)
            text.Append(line).Append('\n');
        return text.ToString();
    }

    public static AdminMethod Read(string name, DestinationKind dest, AdminHandler handler, Presence arg = Presence.None, MethodScope scope = MethodScope.Local) =>
        new(name, scope, MethodAccess.Read, dest, arg, Presence.None, handler);

    public static AdminMethod Write(string name, DestinationKind dest, AdminHandler handler, Presence arg = Presence.None, Presence payload = Presence.None,
        MethodScope scope = MethodScope.Local, IReadOnlySet<string>? allowedArgs = null) =>
        new(name, scope, MethodAccess.Write, dest, arg, payload, handler, allowedArgs);

    public static AdminMethod Execute(string name, AdminHandler handler, Presence arg = Presence.None, IReadOnlySet<string>? allowedArgs = null) =>
        new(name, MethodScope.Local, MethodAccess.Execute, DestinationKind.Any, arg, Presence.None, handler, allowedArgs);

    public static ImmutableDictionary<string, string> NoProperties { get; } = ImmutableDictionary<string, string>.Empty;

    /// <summary>dom0 first, then by name (admin.vm.List order).</summary>
    public static IEnumerable<QubeState> InListOrder(IEnumerable<QubeState> qubes) =>
        qubes.OrderBy(q => q.Class == QubeClass.AdminVM ? 0 : 1).ThenBy(q => q.Name, StringComparer.Ordinal);
}
