namespace QubesActors.Sandbox.Storage;

/// <summary>
/// The init every template carries as <c>/sbin/qubes-init</c>: it reports ready, runs <c>/rw/boot.sh</c> when the
/// private volume has one, and ends when qubesd writes to its control FIFO. Both templates install it.
/// </summary>
public static class QubesInit
{
    public const string Path = "sbin/qubes-init";

    public const string Script = """
        #!/bin/sh
        echo ready > /run/qubes/ready
        [ -x /rw/boot.sh ] && /rw/boot.sh > /run/qubes/boot.log 2>&1 &
        # The open of the FIFO blocks until qubesd writes; a signal (the boot job ending) interrupts it: open again.
        until read cmd < /run/qubes/control; do :; done
        exit 0
        """;

    /// <summary>Writes the init into the template root <paramref name="root"/> (LF line ends, mode 0755).</summary>
    public static void Install(string root)
    {
        var init = System.IO.Path.Combine(root, Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(init)!);
        File.WriteAllText(init, Script.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(init, (UnixFileMode)Convert.ToInt32("755", 8));
    }
}
