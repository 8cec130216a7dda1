using System.Text.RegularExpressions;
using QubesActors.Runtime.Backend;

namespace QubesActors.Sandbox.Devices;

/// <summary>A block device operation refused, with the Qubes error class it maps to (qubes-semantics.md §5).</summary>
public sealed class BlockDeviceException(string qubesError, string message) : Exception(message)
{
    /// <summary><c>DeviceNotFound</c>, <c>DeviceAlreadyAttached</c>, <c>DeviceNotAssigned</c>, <c>ProtocolError</c>, <c>QubesVMNotRunningError</c>, <c>QubesException</c>.</summary>
    public string QubesError { get; } = qubesError;
}

/// <summary>The options of a block attach (<c>qvm-block attach --ro -o k=v</c>): read-only and the frontend's name.</summary>
public sealed record BlockAttachOptions(bool ReadOnly = false, string? FrontendDev = null)
{
    /// <summary>
    /// Parses Qubes' option pairs: <c>read-only</c> (a Qubes boolean), <c>frontend-dev</c> (<c>xvdi</c>..), <c>devtype</c>
    /// (<c>disk</c>, or <c>cdrom</c> which is read-only). Anything else is a protocol error, as in Qubes.
    /// </summary>
    public static BlockAttachOptions Parse(IReadOnlyDictionary<string, string> untrustedOptions)
    {
        var options = new BlockAttachOptions();
        foreach (var (key, value) in untrustedOptions)
        {
            options = key switch
            {
                "read-only" => options with { ReadOnly = BlockRules.ParseBool(value) ?? throw Bad(key, value) },
                "frontend-dev" => options with { FrontendDev = BlockRules.IsFrontendName(value) ? value : throw Bad(key, value) },
                "devtype" => value switch
                {
                    "disk" => options,
                    "cdrom" => options with { ReadOnly = true },
                    _ => throw Bad(key, value),
                },
                _ => throw new BlockDeviceException("ProtocolError", $"unknown block device option '{BlockRules.Printable(key)}'"),
            };
        }
        return options;
    }

    private static BlockDeviceException Bad(string key, string value) =>
        new("ProtocolError", $"invalid value '{BlockRules.Printable(value)}' for block device option '{key}'");
}

/// <summary>The pure rules of block devices: names, ports, identities, what a backend qube may expose.</summary>
public static partial class BlockRules
{
    public const string DeviceClass = "block";

    /// <summary>Qubes' interface code of a block device (the class letter, the rest unknown).</summary>
    public const string Interfaces = "b******";

    // Qubes' frontend names for attached block devices: xvda..xvdd are the qube's own volumes (root, private,
    // volatile, modules), attachments take xvdi onwards.
    private static readonly string[] FrontendNames = [.. Enumerable.Range('i', 'z' - 'i' + 1).Select(c => "xvd" + (char)c)];

    public static bool IsFrontendName(string name) => FrontendNames.Contains(name, StringComparer.Ordinal);

    /// <summary>The first free frontend name (xvdi, xvdj, ...), or the one asked for if it is free.</summary>
    public static string PickFrontendName(IEnumerable<string> used, string? wanted = null)
    {
        var taken = used.ToHashSet(StringComparer.Ordinal);
        if (wanted is not null)
            return !IsFrontendName(wanted) ? throw new BlockDeviceException("ProtocolError", $"invalid frontend-dev '{Printable(wanted)}'")
                : taken.Contains(wanted) ? throw new BlockDeviceException("QubesException", $"frontend device {wanted} is already in use")
                : wanted;
        return FrontendNames.FirstOrDefault(n => !taken.Contains(n))
               ?? throw new BlockDeviceException("QubesException", "no free frontend device name (xvdi..xvdz are all attached)");
    }

    /// <summary>
    /// A port a backend qube may expose (the name of its image file): a letter, then letters, digits, '_' or '-', at
    /// most 32 characters. Nothing that could be a path, a hidden file or an API separator (':' '+').
    /// </summary>
    public static bool IsValidPort(string untrustedPort) => PortPattern().IsMatch(untrustedPort);

    [GeneratedRegex("^[a-z][a-z0-9_-]{0,31}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex PortPattern();

    /// <summary>dom0's loop devices: <c>loop0</c>, <c>loop12</c>.</summary>
    public static bool IsLoopName(string name) => LoopPattern().IsMatch(name);

    [GeneratedRegex("^loop[0-9]{1,6}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex LoopPattern();

    /// <summary>Qubes' booleans: 1 yes true on / 0 no false off, any case.</summary>
    public static bool? ParseBool(string value) => value.ToLowerInvariant() switch
    {
        "1" or "yes" or "true" or "on" => true,
        "0" or "no" or "false" or "off" => false,
        _ => null,
    };

    /// <summary>
    /// The identity of a file-backed block device: the backing file's device and inode, stable while the file lives
    /// (what a USB stick's serial is in Qubes). Only characters that are safe in <c>BACKEND:PORT:DEVICE_ID</c>.
    /// </summary>
    public static string FileIdentity(ulong fileDevice, ulong inode) => $"file-{fileDevice:x}-{inode}";

    /// <summary>What a backend qube's image may be: a regular file, non-empty, whole sectors, not larger than the limit.</summary>
    public static string? RefuseImage(bool isRegularFile, long size, long maxBytes) =>
        !isRegularFile ? "not a regular file"
        : size <= 0 ? "empty"
        : size % 512 != 0 ? "size is not a multiple of 512 bytes"
        : size > maxBytes ? $"larger than {maxBytes} bytes"
        : null;

    /// <summary>Human-readable size for descriptions (the way qvm-block shows it: "(4 MiB)").</summary>
    public static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 when bytes % (1L << 30) == 0 => $"{bytes >> 30} GiB",
        >= 1L << 20 when bytes % (1L << 20) == 0 => $"{bytes >> 20} MiB",
        >= 1L << 10 when bytes % (1L << 10) == 0 => $"{bytes >> 10} KiB",
        _ => $"{bytes} B",
    };

    /// <summary>Untrusted text for a message: control characters escaped, length bounded.</summary>
    public static string Printable(string untrusted)
    {
        var s = new System.Text.StringBuilder();
        foreach (var c in untrusted.Take(64))
            s.Append(char.IsControl(c) || c > '~' ? $"\\x{(int)c:x2}" : c.ToString());
        return untrusted.Length > 64 ? s + "..." : s.ToString();
    }

    /// <summary>The devices that appeared and vanished between two listings of one backend (by port and identity).</summary>
    public static (IReadOnlyList<BackendDevice> Appeared, IReadOnlyList<BackendDevice> Vanished) Diff(
        IReadOnlyCollection<BackendDevice> before, IReadOnlyCollection<BackendDevice> after)
    {
        static (string, string, string) Key(BackendDevice d) => (d.Backend, d.Port, d.DeviceId);
        var was = before.Select(Key).ToHashSet();
        var now = after.Select(Key).ToHashSet();
        return ([.. after.Where(d => !was.Contains(Key(d)))], [.. before.Where(d => !now.Contains(Key(d)))]);
    }
}
