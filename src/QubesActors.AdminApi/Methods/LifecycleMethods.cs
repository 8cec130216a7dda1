using QubesActors.Runtime.Actors;
using static QubesActors.AdminApi.Methods.Handlers;

namespace QubesActors.AdminApi.Methods;

/// <summary>admin.vm.{Start,Shutdown,Kill,Pause,Unpause,Suspend,Resume}. dom0's refusals come from the supervisor (§2).</summary>
public static class LifecycleMethods
{
    /// <summary>qvm-shutdown sends '', force, wait or force+wait; upstream splits on '+' so wait+force is the same call.</summary>
    public static readonly IReadOnlySet<string> ShutdownArgs = new HashSet<string>(StringComparer.Ordinal) { "", "force", "wait", "force+wait", "wait+force" };

    public static IEnumerable<AdminMethod> All =>
    [
        Execute("admin.vm.Start", (call, ct) => Send(call, new QubesProtocol.StartQube(call.Dest.Name, call.Caller), ct)),
        Execute("admin.vm.Shutdown", Shutdown, arg: Presence.Optional, allowedArgs: ShutdownArgs),
        Execute("admin.vm.Kill", (call, ct) => Send(call, new QubesProtocol.KillQube(call.Dest.Name, call.Caller), ct)),
        Execute("admin.vm.Pause", (call, ct) => Send(call, new QubesProtocol.PauseQube(call.Dest.Name, call.Caller), ct)),
        Execute("admin.vm.Unpause", (call, ct) => Send(call, new QubesProtocol.UnpauseQube(call.Dest.Name, call.Caller), ct)),
        Execute("admin.vm.Suspend", (call, ct) => Send(call, new QubesProtocol.SuspendQube(call.Dest.Name, call.Caller), ct)),
        Execute("admin.vm.Resume", (call, ct) => Send(call, new QubesProtocol.ResumeQube(call.Dest.Name, call.Caller), ct)),
    ];

    private static Task<AdminReply> Shutdown(AdminCall call, CancellationToken ct)
    {
        var options = call.Arg.Split('+');
        var force = options.Contains("force");
        var wait = options.Contains("wait");
        // With wait the answer comes when the qube is halted or its shutdown_timeout has passed.
        var timeout = wait ? call.CommandTimeout + TimeSpan.FromSeconds(Math.Max(1, call.State.EffectiveInt(call.Dest, "shutdown_timeout"))) : (TimeSpan?)null;
        return Send(call, new QubesProtocol.ShutdownQube(call.Dest.Name, force, wait, call.Caller), ct, timeout);
    }
}
