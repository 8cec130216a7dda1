using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.AdminApi.Methods;
using QubesActors.AdminApi.Wire;
using QubesActors.Runtime.Actors;
using Xunit;

namespace QubesActors.IntegrationTests.AdminApi;

/// <summary>
/// Random bytes and random mutations of real calls: the framing never throws, the dispatcher answers every framed
/// call with a documented Qubes error or success, and a real daemon survives all of it.
/// </summary>
public sealed class RandomRequestTests(AdminDaemonFixture qubes) : IClassFixture<AdminDaemonFixture>
{
    /// <summary>The class names of docs/qubes-semantics.md §7 (and their documented subclasses).</summary>
    private static readonly HashSet<string> DocumentedClasses =
    [
        "QubesException", "QubesVMError", "QubesVMNotFoundError", "QubesVMAlreadyExistsError", "QubesVMInUseError", "QubesVMNotStartedError",
        "QubesVMNotRunningError", "QubesVMNotPausedError", "QubesVMNotHaltedError", "QubesVMNotSuspendedError", "QubesVMShutdownTimeoutError",
        "QubesNoTemplateError", "QubesMemoryError", "QubesValueError", "QubesPropertyValueError", "QubesNoSuchPropertyError",
        "QubesFeatureNotFoundError", "QubesTagNotFoundError", "QubesLabelNotFoundError", "QubesLabelInUseError", "QubesNotImplementedError",
        "DeviceNotAssigned", "DeviceNotFound", "DeviceAlreadyAttached", "DeviceAlreadyAssigned", "UnrecognizedDevice", "ProtocolError",
        "QubesInvalidTagError", "QubesUnrecognizedDeviceAssignmentMode", "PermissionDenied",
    ];

    private static readonly string[] Methods = [.. MethodTable.Default.Methods.Where(m => !m.Streams).Select(m => m.Name)];
    private static readonly string[] Names = ["dom0", "work", "sys-net", "debian-13", "nosuch", "", "-", "a b", "Work"];
    private static readonly string[] Args =
    [
        "", "netvm", "label", "memory", "wait", "force+wait", "sys-usb+2-1", "dom0+00_14.0+8086:a36d", "_+_", "+", "++", "blue",
        "gui", "created-by-dom0", "x\u00e9", "default_netvm",
    ];
    private static readonly string[] Payloads =
    [
        "", "name=fz label=red", "name= label=", "label=red", "True", "-5", "sys-net", "mode='required'", "mode='bogus'", "action=accept",
        "action=drop proto=udp dstports=1-99999", "0xfff", "'", "key='unterminated", "\u00ff", "all", "?******",
    ];

    private static Gen<byte[]> RandomBytes =>
        from length in Gen.Choose(0, 200)
        from bytes in Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), length)
        select bytes;

    /// <summary>Well-formed headers with hostile parts: what gets past framing and reaches the method table.</summary>
    private static Gen<AdminRequest> Calls =>
        from method in Gen.Elements(Methods.Concat(["admin.vm.Nope", "admin", ""]).ToArray())
        from arg in Gen.Elements(Args)
        from dest in Gen.Elements(Names.Where(n => n.Length > 0 && !n.Contains(' ')).ToArray())
        from payload in Gen.Elements(Payloads)
        select new AdminRequest(method, arg.Replace("\u00e9", "e"), "dom0", dest, Encoding.Latin1.GetBytes(payload));

    /// <summary>A valid request with bytes flipped, cut or inserted.</summary>
    private static Gen<byte[]> Mutated =>
        from call in Calls
        from position in Gen.Choose(0, 1000)
        from value in Gen.Choose(0, 255)
        from kind in Gen.Choose(0, 2)
        select Mutate(call.Encode(), position, (byte)value, kind);

    private static byte[] Mutate(byte[] bytes, int position, byte value, int kind)
    {
        if (bytes.Length == 0)
            return [value];
        var at = position % bytes.Length;
        return kind switch
        {
            0 => [.. bytes[..at], value, .. bytes[(at + 1)..]],
            1 => bytes[..at],
            _ => [.. bytes[..at], value, .. bytes[at..]],
        };
    }

    [Property(MaxTest = 1000)]
    public Property Framing_never_throws_and_a_framed_request_encodes_back() =>
        Prop.ForAll(Gen.OneOf(RandomBytes, Mutated).ToArbitrary(), bytes =>
        {
            var ok = RequestFraming.TryParse(bytes, out var request, out var error);
            if (!ok)
                return error is not null && request is null;
            // What the client library would send for the parsed call frames back to the same call.
            var again = RequestFraming.TryParse(request!.Encode(), out var reparsed, out _);
            return again && (reparsed!.Method, reparsed.Arg, reparsed.Source, reparsed.Dest) == (request.Method, request.Arg, request.Source, request.Dest)
                   && reparsed.UntrustedPayload.Span.SequenceEqual(request.UntrustedPayload.Span);
        });

    [Property(MaxTest = 1000)]
    public Property Dispatch_answers_every_framed_call_with_success_or_a_documented_error() =>
        Prop.ForAll(Calls.ToArbitrary(), request =>
        {
            var dispatcher = new AdminDispatcher(new FakeGateway(), MethodTable.Default);
            var reply = dispatcher.DispatchAsync(request, new Caller("dom0", 0, 1), new NullFrames(), CancellationToken.None).GetAwaiter().GetResult();
            return reply switch
            {
                AdminReply.Ok => true,
                AdminReply.Failed failed => DocumentedClasses.Contains(failed.Error.QubesClassName),
                _ => false,
            };
        });

    [Fact]
    public async Task A_real_daemon_survives_random_and_mutated_requests()
    {
        var samples = Gen.OneOf(RandomBytes, Mutated, Calls.Select(c => c.Encode())).Sample(400, 50);
        var answered = 0;
        foreach (var bytes in samples)
        {
            AdminResponse response;
            try
            {
                response = await qubes.Daemon.Client.CallRawAsync(bytes);
            }
            catch (IOException) when (!RequestFraming.TryParse(bytes, out _, out _))
            {
                continue; // framing errors abort the connection without a response (§6.1)
            }
            answered++;
            if (response is AdminResponse.Error error)
                Assert.True(DocumentedClasses.Contains(error.ClassName) && error.Traceback == "", $"undocumented error {error} for {Convert.ToHexString(bytes)}");
            else
                Assert.IsType<AdminResponse.Ok>(response);
        }
        Assert.True(answered > 50, $"only {answered} of {samples.Length} requests got past framing");
        Assert.StartsWith("dom0 class=AdminVM", await qubes.Ok("admin.vm.List", "dom0"));
        Assert.DoesNotContain("Unhandled exception", qubes.Daemon.Output, StringComparison.Ordinal);
    }

    private sealed class NullFrames : IFrameSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> frame, CancellationToken ct) => ValueTask.CompletedTask;
    }
}
