using System.Net;
using QubesActors.Core.Model;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// What the network layer needs to know of one qube: its identity (qid, or dispid for a disposable, which
/// fixes its address as in Qubes), its netvm and whether it provides network to others.
/// </summary>
public sealed record NetworkDomain
{
    // Upstream's id-to-address mapping (Addressing.VmIdToIpv4) stays inside one /16 up to this id.
    public const int MaxId = 254 * 256;

    public NetworkDomain(string name, int qid, int? dispId = null, string? netVm = null, bool providesNetwork = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (qid is < 1 or > MaxId)
            throw new ArgumentOutOfRangeException(nameof(qid), qid, $"a networked qube's qid is 1-{MaxId} (dom0 has no network)");
        if (dispId is < 1 or > MaxId)
            throw new ArgumentOutOfRangeException(nameof(dispId), dispId, $"dispid is 1-{MaxId}");
        if (netVm == name)
            throw new ArgumentException($"{name} cannot be its own netvm", nameof(netVm));
        Name = name;
        Qid = qid;
        DispId = dispId;
        NetVm = netVm;
        ProvidesNetwork = providesNetwork;
        // The same text as the Core model's `ip` property, so what qvm-prefs shows is what the qube gets.
        Ip = IPAddress.Parse(dispId is { } d ? Addressing.VmIdToIpv4("10.138", d) : Addressing.VmIdToIpv4("10.137", qid));
        Key = dispId is { } k ? $"d{k}" : $"q{qid}";
    }

    public string Name { get; }
    public int Qid { get; }
    public int? DispId { get; }
    public string? NetVm { get; }
    public bool ProvidesNetwork { get; }

    /// <summary>The qube's IPv4 address: 10.137.0.qid, or 10.138.x.y for a disposable.</summary>
    public IPAddress Ip { get; }

    /// <summary>
    /// Short and stable identifier used in interface, chain and namespace names: <c>q&lt;qid&gt;</c> or
    /// <c>d&lt;dispid&gt;</c>. Ids, not names: a qube can be renamed, and names can be 31 characters long.
    /// </summary>
    public string Key { get; }
}
