using System.Runtime.InteropServices;

namespace QubesActors.AdminApi.Server;

/// <summary>
/// qubesd's socket belongs to group <c>qubes</c> (mode 0660), so that the group's members run the qvm-* tools without
/// root. The group is looked up in /etc/group; a machine without it keeps the daemon's own group.
/// </summary>
public static partial class SocketGroup
{
    /// <summary>The gid of <paramref name="name"/> from /etc/group, or null when there is no such group.</summary>
    public static int? Find(string name, string groupFile = "/etc/group")
    {
        if (!File.Exists(groupFile))
            return null;
        foreach (var line in File.ReadLines(groupFile))
        {
            // name:password:gid:members
            var fields = line.Split(':');
            if (fields.Length >= 3 && fields[0] == name && int.TryParse(fields[2], out var gid))
                return gid;
        }
        return null;
    }

    /// <summary>Gives <paramref name="path"/> to group <paramref name="gid"/>; false (errno kept) when not permitted.</summary>
    public static bool Apply(string path, int gid) => Chown(path, -1, gid) == 0;

    public static int LastError => Marshal.GetLastPInvokeError();

    [DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);
}
