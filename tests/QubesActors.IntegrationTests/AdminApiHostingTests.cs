using QubesActors.Daemon;
using QubesActors.Runtime.Settings;
using Xunit;

namespace QubesActors.IntegrationTests;

public sealed class AdminApiHostingTests
{
    private static DaemonSettings Settings(params string[] sets) =>
        DaemonSettings.Load(null, "/tmp/qa-hosting-state", sets, new Dictionary<string, string?>());

    [Fact]
    public void Socket_defaults_to_the_state_dir()
    {
        var hosting = AdminApiHosting.From(Settings(), null);
        Assert.Equal("/tmp/qa-hosting-state/qubesd.sock", hosting.SocketPath);
        Assert.Equal(TimeSpan.FromSeconds(30), hosting.ReadTimeout);
    }

    [Fact]
    public void Setting_then_option_override_the_socket_and_timeouts_are_settings()
    {
        var settings = Settings("qubesd.socket=/tmp/qa-hosting/conf.sock", "qubesd.admin-api.read-timeout=5s", "qubesd.admin-api.max-connections=8");
        var fromConfig = AdminApiHosting.From(settings, null);
        Assert.Equal(("/tmp/qa-hosting/conf.sock", TimeSpan.FromSeconds(5), 8), (fromConfig.SocketPath, fromConfig.ReadTimeout, fromConfig.MaxConnections));
        Assert.Equal("/tmp/qa-hosting/cli.sock", AdminApiHosting.From(settings, "/tmp/qa-hosting/cli.sock").SocketPath);
    }
}
