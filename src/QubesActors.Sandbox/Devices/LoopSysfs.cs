namespace QubesActors.Sandbox.Devices;

/// <summary>A bound loop device as sysfs shows it (<c>/sys/block/loopN</c>).</summary>
public sealed record LoopDevice(string Name, uint Major, uint Minor, string BackingFile, bool ReadOnly, long Bytes);

/// <summary>Reads the bound loop devices from sysfs; the root is a parameter so a fake tree tests it without root.</summary>
public static class LoopSysfs
{
    public static IReadOnlyList<LoopDevice> Read(string sysBlock = "/sys/block")
    {
        var found = new List<LoopDevice>();
        if (!Directory.Exists(sysBlock))
            return found;
        foreach (var dir in Directory.EnumerateFileSystemEntries(sysBlock, "loop*"))
        {
            var name = Path.GetFileName(dir);
            if (!BlockRules.IsLoopName(name) || Get(name, sysBlock) is not { } loop)
                continue;
            found.Add(loop);
        }
        return [.. found.OrderBy(l => l.Name.Length).ThenBy(l => l.Name, StringComparer.Ordinal)];
    }

    /// <summary>One loop device, or null when it does not exist or has no backing file (unbound).</summary>
    public static LoopDevice? Get(string name, string sysBlock = "/sys/block")
    {
        var dir = Path.Combine(sysBlock, name);
        try
        {
            var backing = Path.Combine(dir, "loop", "backing_file");
            if (!File.Exists(backing))
                return null;
            var dev = File.ReadAllText(Path.Combine(dir, "dev")).Trim().Split(':');
            return new LoopDevice(name, uint.Parse(dev[0]), uint.Parse(dev[1]), File.ReadAllText(backing).TrimEnd('\n'),
                File.ReadAllText(Path.Combine(dir, "ro")).Trim() == "1", long.Parse(File.ReadAllText(Path.Combine(dir, "size")).Trim()) * 512);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            // Unbound between the listing and the read.
            return null;
        }
    }
}
