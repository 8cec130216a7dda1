using System.Runtime.InteropServices;

namespace QubesActors.Sandbox;

/// <summary>The few libc calls the sandbox layer needs and .NET does not offer.</summary>
internal static partial class Native
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    public const int OWriteOnly = 1;
    public const int ONonBlock = 0x800;

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int MkFifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string? data);

    public const int MntDetach = 2;

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    /// <summary>
    /// Writes a line to a FIFO only if someone reads it now: a non-blocking open fails at once when the reader (the
    /// sandbox's init) is gone, instead of blocking forever.
    /// </summary>
    public static bool TryWriteFifo(string path, string line)
    {
        var fd = Open(path, OWriteOnly | ONonBlock);
        if (fd < 0)
            return false;
        try
        {
            var bytes = System.Text.Encoding.ASCII.GetBytes(line);
            return Write(fd, bytes, bytes.Length) == bytes.Length;
        }
        finally
        {
            Close(fd);
        }
    }
}
