using QubesActors.AdminApi.Wire;
using Xunit;

namespace QubesActors.IntegrationTests.AdminApi;

/// <summary>One qubesd process with the default layout, shared by a test class; tests use names of their own.</summary>
public sealed class AdminDaemonFixture : IAsyncLifetime
{
    private readonly string _stateDir = Path.Combine(Path.GetTempPath(), $"qa-admin-{Guid.NewGuid():N}");
    private QubesdProcess? _daemon;

    public QubesdProcess Daemon => _daemon ?? throw new InvalidOperationException("daemon not started");

    public async Task InitializeAsync()
    {
        _daemon = await QubesdProcess.StartAsync(_stateDir);
        // The layout's autostart qubes (sys-net, sys-firewall, sys-usb) are what device and network tests build on.
        await WaitUntilAsync(async () => (await Daemon.CallAsync("admin.vm.List", "dom0")).OkText.Contains("sys-usb class=AppVM state=Running", StringComparison.Ordinal));
    }

    public Task DisposeAsync()
    {
        _daemon?.Dispose();
        try
        {
            Directory.Delete(_stateDir, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }

    public Task<AdminResponse> Call(string method, string dest, string arg = "", string? payload = null) => Daemon.CallAsync(method, dest, arg, payload);

    public async Task<string> Ok(string method, string dest, string arg = "", string? payload = null)
    {
        var response = await Call(method, dest, arg, payload);
        return response is AdminResponse.Ok ok ? ok.Text : throw new Xunit.Sdk.XunitException($"{method}+{arg} {dest}: expected ok, got {response}");
    }

    public async Task<AdminResponse.Error> Error(string method, string dest, string arg = "", string? payload = null) =>
        Assert.IsType<AdminResponse.Error>(await Call(method, dest, arg, payload));

    /// <summary>Creates an AppVM with a name of the test's own.</summary>
    public async Task<string> NewAppVm(string prefix, string label = "green")
    {
        var name = $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(31, prefix.Length + 9)];
        await Ok("admin.vm.Create.AppVM", "dom0", "", $"name={name} label={label}");
        return name;
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }
}
