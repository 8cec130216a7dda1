using QubesActors.Sandbox.Qrexec;
using Xunit;

namespace QubesActors.Sandbox.Tests.Qrexec;

/// <summary>qrexec between real sandboxes (bubblewrap, busybox template), as root.</summary>
public sealed class QrexecCallTests : IAsyncLifetime
{
    private QrexecFixture _q = null!;

    public Task InitializeAsync()
    {
        _q = new QrexecFixture();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _q.DisposeAsync();

    [Fact]
    public async Task A_call_from_inside_a_qube_reaches_the_target_service_with_its_input_and_returns_its_output_stderr_and_exit_code()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var r = await _q.Sh(a, $"echo hi | qrexec-client-vm {b} test.Echo+some.arg; echo \"rc=$?\"");
        Assert.Equal($"got hi from {a} for test.Echo+some.arg arg=some.arg\nrc=3\n", r.Out);
        Assert.Equal("to stderr\n", r.Err);
        var call = Assert.Single(_q.Router.Calls);
        Assert.Equal(new QrexecCall(a, b, "test.Echo", "some.arg"), call);
        Assert.Equal(3, Assert.Single(_q.Router.Ended).Code);
    }
}
