using QubesActors.Sandbox.Qrexec;
using Xunit;

namespace QubesActors.Sandbox.Tests.Qrexec;

/// <summary>Calls go where the router resolves them (policy tokens), and the guest bundle as a qube sees it.</summary>
public sealed class QrexecRoutingTests : IAsyncLifetime
{
    private QrexecFixture _q = null!;
    private readonly List<(string Target, int Code)> _disposablesEnded = [];

    public Task InitializeAsync()
    {
        _q = new QrexecFixture(new FakeRouter(call => call.Target switch
        {
            // As the runtime would: @dispvm becomes a (here: already running) disposable, destroyed when Ended comes.
            "@dispvm" => new QrexecRoute.Allowed(_q.T.Name("disp"), code =>
            {
                lock (_disposablesEnded)
                    _disposablesEnded.Add((call.Service, code));
                return Task.CompletedTask;
            }),
            "@default" => new QrexecRoute.Allowed(_q.T.Name("b"), _ => Task.CompletedTask),
            _ => null,
        }));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _q.DisposeAsync();

    [Fact]
    public async Task qvm_open_in_dvm_and_qvm_copy_reach_the_qube_the_router_resolved_and_Ended_follows_the_call()
    {
        var a = await _q.Start("a");
        var b = await _q.Start("b");
        var disp = await _q.Start("disp");
        var r = await _q.Sh(a, "echo text > /rw/home/n.txt; qvm-open-in-dvm /rw/home/n.txt; echo \"rc=$?\"; qvm-copy /rw/home/n.txt; echo \"rc=$?\"");
        var lines = r.Out.Split('\n');
        Assert.StartsWith("/tmp/qubes-open.", lines[0]);
        Assert.Equal(["rc=0", "rc=0"], lines[1..3]);
        Assert.Equal("text\n", (await _q.Sh(disp, $"cat {lines[0]}")).Out);
        Assert.Equal("text\n", File.ReadAllText(Path.Combine(_q.Home(b), "QubesIncoming", a, "n.txt")));
        Assert.Equal([("@dispvm", "qubes.OpenInVM"), ("@default", "qubes.Filecopy")], _q.Router.Calls.Select(c => (c.Target, c.Service)));
        Assert.Equal(("qubes.OpenInVM", 0), Assert.Single(_disposablesEnded));
    }

    [Fact]
    public async Task A_qube_has_the_guest_tools_on_its_path_and_cannot_change_them()
    {
        var a = await _q.Start("a", name => _q.T.Boot(name, """
            { command -v qrexec-client-vm; command -v qvm-copy-to-vm; touch /run/qubes/bin/x 2>&1 || echo read-only; rm -f /run/qubes/bin/qvm-copy 2>&1 || echo read-only; cat /etc/resolv.conf; } > /run/qubes/facts.tmp
            mv /run/qubes/facts.tmp /run/qubes/facts
            """));
        var facts = Path.Combine(_q.T.Run(a), "facts");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!File.Exists(facts))
            await Task.Delay(10, timeout.Token);
        var lines = File.ReadAllLines(facts);
        Assert.Equal("/run/qubes/bin/qrexec-client-vm", lines[0]);
        Assert.Equal("/run/qubes/bin/qvm-copy-to-vm", lines[1]);
        Assert.Equal(2, lines.Count(l => l == "read-only"));
        Assert.Contains("nameserver 10.139.1.1", lines);
        Assert.True(File.Exists(Path.Combine(Guest.GuestBundle.BinDirectory, "qvm-copy")));
    }
}
