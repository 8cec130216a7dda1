using System.Globalization;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// The thin shell that applies network plans on Linux: network namespaces (<c>ip netns</c>), veth pairs,
/// addresses and routes (rtnetlink, or <c>ip -n NS -batch</c>), sysctls and nftables (libnftables in this process, from
/// a thread inside the namespace; the <c>nft</c> program there when the library is missing). Needs root. Every decision
/// is in the plans; this class only runs them.
/// </summary>
public sealed class LinuxNetwork(string ipPath = "ip", string? nftPath = null)
{
    // Absolute when it is where Debian puts it: root's PATH does not always hold /usr/sbin.
    private readonly string nftPath = nftPath ?? (File.Exists("/usr/sbin/nft") ? "/usr/sbin/nft" : "nft");

    /// <summary>The <c>nft</c> program even when libnftables is there: the fallback's tests, the bench's "before".</summary>
    internal bool ForceNftProcess { get; init; }

    private bool NftInProcess => !ForceNftProcess && NftLibrary.Available;

    /// <summary>
    /// Creates an empty namespace with only <c>lo</c> up: what a qube without a netvm keeps. With
    /// <paramref name="loopbackLater"/> the caller brings <c>lo</c> up itself (in <see cref="LinkAsync"/>'s batch:
    /// one process less on the start path).
    /// </summary>
    public async Task CreateNamespaceAsync(string namespaceName, CancellationToken cancellationToken = default, bool loopbackLater = false)
    {
        // Without a process once /run/netns is set up (the first `ip netns add` on a machine does that).
        if (NetNamespaces.DirectoryReady())
        {
            NetNamespaces.Create(namespaceName);
            return;
        }
        await Ip(["netns", "add", namespaceName], null, cancellationToken).ConfigureAwait(false);
        if (!loopbackLater)
            await Ip(["-n", namespaceName, "link", "set", "lo", "up"], null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether a named namespace exists: <c>ip netns</c> keeps each as a file in <c>/run/netns</c>.</summary>
    public static bool NamespaceExists(string namespaceName) => File.Exists(Path.Combine("/run/netns", namespaceName));

    /// <summary>Deletes a namespace and every interface in it (veth peers elsewhere go with it); absent is fine.</summary>
    public async Task DeleteNamespaceAsync(string namespaceName, CancellationToken cancellationToken = default)
    {
        if (!NamespaceExists(namespaceName))
            return;
        // What `ip netns del` does: detach the bind mount, remove the file; the namespace ends with its last user.
        var path = Path.Combine(NetNamespaces.Directory, namespaceName);
        if (Native.Umount2(path, Native.MntDetach) != 0)
        {
            await Ip(["netns", "del", namespaceName], null, cancellationToken).ConfigureAwait(false);
            return;
        }
        File.Delete(path);
    }

    public async Task<IReadOnlySet<string>> ListNamespacesAsync(CancellationToken cancellationToken = default)
    {
        var output = await Ip(["netns", "list"], null, cancellationToken).ConfigureAwait(false);
        // Lines look like "name" or "name (id: 3)".
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' ')[0]).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Deletes the namespaces with <paramref name="naming"/>'s prefix that are not in <paramref name="keep"/>: those of qubes that are gone.</summary>
    public async Task<IReadOnlyList<string>> CleanUpStaleAsync(NetworkNaming naming, IReadOnlySet<string> keep, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(naming);
        var stale = (await ListNamespacesAsync(cancellationToken).ConfigureAwait(false))
            .Where(ns => naming.Owns(ns) && !keep.Contains(ns)).Order(StringComparer.Ordinal).ToList();
        foreach (var ns in stale)
            await Ip(["netns", "del", ns], null, cancellationToken).ConfigureAwait(false);
        return stale;
    }

    /// <summary>Makes a namespace a netvm: forwarding on, its firewall and NAT tables (no clients yet).</summary>
    public async Task SetUpNetVmAsync(NetVmPlan netVm, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(netVm);
        // A net sysctl belongs to the namespace of whoever opens it: written by a thread in the netvm's namespace.
        NetNamespaces.In(Path.Combine(NetNamespaces.Directory, netVm.Namespace), () =>
        {
            File.WriteAllText("/proc/sys/net/ipv4/ip_forward", "1");
            return true;
        });
        await NftAsync(netVm.Namespace, FirewallCompiler.NetVmBaseScript(netVm), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Joins a client's namespace to its netvm's: the veth pair, the netvm's address on the vif with a host route
    /// to the client, the client's address with its default route to the gateway. The client's firewall chain is
    /// applied separately (<see cref="ApplyClientChainAsync"/>); until then the netvm forwards nothing for it.
    /// </summary>
    public async Task LinkAsync(LinkPlan link, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(link);
        if (NetNamespaces.DirectoryReady())
        {
            // The same requests over rtnetlink from inside each namespace: no process (two `ip` runs cost ~20 ms here).
            await Task.Run(() => LinkByNetlink(link), cancellationToken).ConfigureAwait(false);
            return;
        }
        var netVmSide =
            $"link add {link.VifName} type veth peer name {link.ClientInterface} netns {link.ClientNamespace}\n" +
            $"addr add {link.Gateway}/32 dev {link.VifName}\n" +
            $"link set {link.VifName} up\n" +
            $"route add {link.ClientIp}/32 dev {link.VifName} scope link src {link.Gateway}\n";
        var clientSide =
            "link set lo up\n" +
            $"addr add {link.ClientIp}/32 dev {link.ClientInterface}\n" +
            $"link set {link.ClientInterface} up\n" +
            $"route add {link.Gateway}/32 dev {link.ClientInterface} scope link\n" +
            $"route add default via {link.Gateway} dev {link.ClientInterface}\n";
        await Ip(["-n", link.NetVmNamespace, "-batch", "-"], netVmSide, cancellationToken).ConfigureAwait(false);
        await Ip(["-n", link.ClientNamespace, "-batch", "-"], clientSide, cancellationToken).ConfigureAwait(false);
    }

    private static void LinkByNetlink(LinkPlan link)
    {
        using (var netVm = RtNetlink.In(link.NetVmNamespace))
        {
            try
            {
                netVm.AddVeth(link.VifName, link.ClientInterface, link.ClientNamespace);
            }
            catch (NetworkCommandException e) when (e.ExitCode == RtNetlink.Eexist)
            {
                // The same qube's previous link: its namespace was deleted a moment ago and the kernel has not yet
                // destroyed the veth pair in it (that happens asynchronously). The vif's name is this qube's; it goes —
                // unless the kernel gets there first (ENODEV), and until the name is free.
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        netVm.DeleteLink(link.VifName);
                    }
                    catch (NetworkCommandException gone) when (gone.ExitCode == RtNetlink.Enodev)
                    {
                    }
                    try
                    {
                        netVm.AddVeth(link.VifName, link.ClientInterface, link.ClientNamespace);
                        break;
                    }
                    catch (NetworkCommandException again) when (again.ExitCode == RtNetlink.Eexist && attempt < 50)
                    {
                        Thread.Sleep(1);
                    }
                }
            }
            var vif = RtNetlink.IndexOf(link.NetVmNamespace, link.VifName);
            netVm.AddAddress(vif, link.Gateway, link.VifName);
            netVm.Up(vif, link.VifName);
            netVm.AddRoute(vif, link.ClientIp, link.Gateway, null, link.VifName);
        }
        using var client = RtNetlink.In(link.ClientNamespace);
        client.Up(RtNetlink.IndexOf(link.ClientNamespace, "lo"), "lo");
        var eth = RtNetlink.IndexOf(link.ClientNamespace, link.ClientInterface);
        client.AddAddress(eth, link.ClientIp, link.ClientInterface);
        client.Up(eth, link.ClientInterface);
        client.AddRoute(eth, link.Gateway, null, null, link.ClientInterface);
        client.AddRoute(eth, null, null, link.Gateway, link.ClientInterface);
    }

    /// <summary>
    /// Cuts a client off its netvm: its chain removed, the veth pair deleted (from the client's side, so it works
    /// when the netvm's namespace is already gone). The client keeps only <c>lo</c>.
    /// </summary>
    public async Task UnlinkAsync(LinkPlan link, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(link);
        if (NamespaceExists(link.NetVmNamespace))
            await NftAsync(link.NetVmNamespace, FirewallCompiler.RemoveClientChain(link), cancellationToken).ConfigureAwait(false);
        if (NamespaceExists(link.ClientNamespace))
        {
            var links = await Ip(["-n", link.ClientNamespace, "-o", "link", "show"], null, cancellationToken).ConfigureAwait(false);
            if (links.Contains($" {link.ClientInterface}@", StringComparison.Ordinal))
                await Ip(["-n", link.ClientNamespace, "link", "del", link.ClientInterface], null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Replaces one client's chain in its netvm (one atomic nftables transaction).</summary>
    public Task ApplyClientChainAsync(LinkPlan link, CompiledClientChain chain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(link);
        ArgumentNullException.ThrowIfNull(chain);
        return NftAsync(link.NetVmNamespace, chain.Script, cancellationToken);
    }

    /// <summary>The edge netvm's link to the uplink namespace; the netvm's default route goes there.</summary>
    public async Task LinkUplinkAsync(UplinkPlan uplink, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uplink);
        var prefix = uplink.PrefixLength.ToString(CultureInfo.InvariantCulture);
        var uplinkSide =
            $"link add {uplink.UplinkInterface} type veth peer name {NetworkNaming.ClientInterface} netns {uplink.NetVmNamespace}\n" +
            $"addr add {uplink.UplinkAddress}/{prefix} dev {uplink.UplinkInterface}\n" +
            $"link set {uplink.UplinkInterface} up\n";
        var netVmSide =
            $"addr add {uplink.NetVmAddress}/{prefix} dev {NetworkNaming.ClientInterface}\n" +
            $"link set {NetworkNaming.ClientInterface} up\n" +
            $"route add default via {uplink.UplinkAddress} dev {NetworkNaming.ClientInterface}\n";
        await Ip(["-n", uplink.UplinkNamespace, "-batch", "-"], uplinkSide, cancellationToken).ConfigureAwait(false);
        await Ip(["-n", uplink.NetVmNamespace, "-batch", "-"], netVmSide, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs an nft script inside a namespace, as one transaction (<c>nft -f -</c>).</summary>
    public Task NftAsync(string namespaceName, string script, CancellationToken cancellationToken = default) => NftInProcess
        ? NftLibrary.RunAsync(namespaceName, script, "nft -f -", showCommands: true, cancellationToken)
        : CommandRunner.RunAsync(nftPath, ["-f", "-"], script, cancellationToken, netNamespace: namespaceName);

    /// <summary>The ruleset of a namespace, for inspection and tests.</summary>
    public Task<string> ListRulesetAsync(string namespaceName, CancellationToken cancellationToken = default) => NftInProcess
        ? NftLibrary.RunAsync(namespaceName, "list ruleset", "nft list ruleset", showCommands: false, cancellationToken)
        : CommandRunner.RunAsync(nftPath, ["list", "ruleset"], null, cancellationToken, netNamespace: namespaceName);

    private Task<string> Ip(IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken) =>
        CommandRunner.RunAsync(ipPath, arguments, standardInput, cancellationToken);
}
