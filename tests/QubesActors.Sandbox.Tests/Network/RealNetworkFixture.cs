using Xunit;

namespace QubesActors.Sandbox.Tests.Network;

/// <summary>
/// The uplink, sys-net and sys-firewall shared by the real-network tests (each test adds and removes its own
/// qubes). Built once, deleted at the end. Without root or the tools it throws, so every test fails with the reason.
/// </summary>
public sealed class RealNetworkFixture : IAsyncLifetime
{
    private TestNetwork? _network;

    internal TestNetwork Network => _network ?? throw new InvalidOperationException("the test network was not built");

    public async Task InitializeAsync() => _network = await TestNetwork.StartAsync();

    public async Task DisposeAsync()
    {
        if (_network is not null)
            await _network.DisposeAsync();
    }
}

/// <summary>Real-network tests run one at a time: they share the fixture, and timings must not overlap other traffic tests.</summary>
[CollectionDefinition(Name)]
public sealed class RealNetworkCollection : ICollectionFixture<RealNetworkFixture>
{
    public const string Name = "real network";
}
