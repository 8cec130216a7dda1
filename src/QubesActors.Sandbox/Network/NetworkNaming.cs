namespace QubesActors.Sandbox.Network;

/// <summary>
/// Names of everything the network layer creates. The prefix marks a namespace as ours, so stale ones can be
/// cleaned up without touching anything else on the machine; tests use a prefix of their own per run.
/// </summary>
public sealed record NetworkNaming
{
    public const string DefaultPrefix = "qa-";

    /// <summary>The interface name inside every client namespace, as in a Qubes VM.</summary>
    public const string ClientInterface = "eth0";

    /// <summary>Netvm-side interfaces all start with this, so one rule can match "any client".</summary>
    public const string VifPrefix = "vif";

    /// <summary>Linux interface names hold at most 15 characters (IFNAMSIZ - 1).</summary>
    public const int MaxInterfaceName = 15;

    public NetworkNaming(string prefix = DefaultPrefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        // Restricted to characters safe in a file name, a shell word and an nft identifier.
        if (prefix.Length is < 2 or > 32 || !prefix.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_'))
            throw new ArgumentException($"namespace prefix must be 2-32 characters of a-z 0-9 - _: '{prefix}'", nameof(prefix));
        Prefix = prefix;
    }

    public string Prefix { get; }

    public string NamespaceOf(NetworkDomain domain) => Prefix + domain.Key;

    /// <summary>True for a namespace this naming created (what stale clean-up may delete).</summary>
    public bool Owns(string namespaceName) => namespaceName.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The netvm-side end of a client's veth pair: <c>vifq12</c>, at most 14 characters.</summary>
    public static string VifOf(NetworkDomain client) => VifPrefix + client.Key;

    /// <summary>The client's chain in its netvm's firewall table, as upstream's <c>qbs-</c> chains.</summary>
    public static string ChainOf(NetworkDomain client) => "qbs-" + client.Key;
}
