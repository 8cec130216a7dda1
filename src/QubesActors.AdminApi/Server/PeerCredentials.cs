using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace QubesActors.AdminApi.Server;

/// <summary>The process at the other end of a Unix socket, from SO_PEERCRED (Linux: struct ucred { pid, uid, gid }).</summary>
public sealed record PeerCredentials(int Pid, int Uid, int Gid)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Null where the kernel does not answer (not Linux, or not a Unix socket).</summary>
    public static PeerCredentials? Of(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
            return null;
        try
        {
            Span<byte> ucred = stackalloc byte[12];
            var length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
            if (length < 12)
                return null;
            // struct ucred is three native-endian ints.
            return new PeerCredentials(MemoryMarshal.Read<int>(ucred), MemoryMarshal.Read<int>(ucred[4..]), MemoryMarshal.Read<int>(ucred[8..]));
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
