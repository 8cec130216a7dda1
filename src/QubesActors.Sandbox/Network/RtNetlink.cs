using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;

namespace QubesActors.Sandbox.Network;

/// <summary>
/// The few rtnetlink requests a link needs (a veth pair into another namespace, an address, up, a route), sent on a
/// NETLINK_ROUTE socket opened inside the namespace concerned: what <c>ip -n NS -batch</c> does, without its process.
/// Every request asks for an acknowledgement and a refusal throws with the kernel's errno, as <c>ip</c> reports it.
/// </summary>
internal sealed partial class RtNetlink : IDisposable
{
    private const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, NetlinkRoute = 0, AfInet = 2;
    private const ushort RtmNewLink = 16, RtmDelLink = 17, RtmNewAddr = 20, RtmNewRoute = 24, NlmsgError = 2;
    public const int Eexist = 17;
    public const int Enodev = 19;
    private const ushort NlmFRequest = 1, NlmFAck = 4, NlmFExcl = 0x200, NlmFCreate = 0x400;
    private const ushort IflaIfname = 3, IflaLinkinfo = 18, IflaInfoKind = 1, IflaInfoData = 2, VethInfoPeer = 1, IflaNetNsFd = 28;
    private const ushort IfaAddress = 1, IfaLocal = 2;
    private const ushort RtaDst = 1, RtaOif = 4, RtaGateway = 5, RtaPrefsrc = 7;
    private const uint IffUp = 1;
    private const byte RtTableMain = 254, RtprotBoot = 3, RtScopeUniverse = 0, RtScopeLink = 253, RtnUnicast = 1;

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint Send(int fd, byte[] buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint Recv(int fd, byte[] buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial uint IfNameToIndex(string name);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    private readonly int _fd;
    private uint _sequence;

    private RtNetlink(int fd) => _fd = fd;

    /// <summary>A socket of the namespace <paramref name="namespaceName"/> (it stays in it whatever thread uses it).</summary>
    public static RtNetlink In(string namespaceName) => NetNamespaces.In(Path.Combine(NetNamespaces.Directory, namespaceName), () =>
    {
        var fd = Socket(AfNetlink, SockRaw | SockCloexec, NetlinkRoute);
        return fd < 0 ? throw Error("socket(AF_NETLINK)") : new RtNetlink(fd);
    });

    /// <summary>The index of an interface of the namespace <paramref name="namespaceName"/>.</summary>
    public static uint IndexOf(string namespaceName, string interfaceName) => NetNamespaces.In(Path.Combine(NetNamespaces.Directory, namespaceName), () =>
    {
        var index = IfNameToIndex(interfaceName);
        return index != 0 ? index : throw Error($"no interface {interfaceName} in {namespaceName}");
    });

    /// <summary><c>link add NAME type veth peer name PEER netns PEER_NS</c>.</summary>
    public void AddVeth(string name, string peerName, string peerNamespace)
    {
        var peerNs = Open(Path.Combine(NetNamespaces.Directory, peerNamespace), 0x80000 /* O_RDONLY|O_CLOEXEC */);
        if (peerNs < 0)
            throw Error($"opening namespace {peerNamespace}");
        try
        {
            var peer = new Message().Header(16).String(IflaIfname, peerName).U32(IflaNetNsFd, (uint)peerNs);
            var data = new Message().Nested(VethInfoPeer, peer);
            var linkInfo = new Message().String(IflaInfoKind, "veth").Nested(IflaInfoData, data);
            var request = new Message().Header(16).String(IflaIfname, name).Nested(IflaLinkinfo, linkInfo);
            Request(RtmNewLink, NlmFCreate | NlmFExcl, request, $"link add {name} type veth peer name {peerName} netns {peerNamespace}");
        }
        finally
        {
            Close(peerNs);
        }
    }

    /// <summary><c>link del NAME</c> (a veth takes its peer with it).</summary>
    public void DeleteLink(string name) =>
        Request(RtmDelLink, 0, new Message().Header(16).String(IflaIfname, name), $"link del {name}");

    /// <summary><c>link set INDEX up</c>.</summary>
    public void Up(uint index, string name)
    {
        var info = new byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(info.AsSpan(4), (int)index);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(8), IffUp);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(12), IffUp);
        Request(RtmNewLink, 0, new Message().Raw(info), $"link set {name} up");
    }

    /// <summary><c>addr add ADDRESS/32 dev INDEX</c>.</summary>
    public void AddAddress(uint index, IPAddress address, string name)
    {
        var header = new byte[8];
        header[0] = AfInet;
        header[1] = 32;
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), index);
        var bytes = address.GetAddressBytes();
        Request(RtmNewAddr, NlmFCreate | NlmFExcl, new Message().Raw(header).Bytes(IfaLocal, bytes).Bytes(IfaAddress, bytes), $"addr add {address}/32 dev {name}");
    }

    /// <summary>
    /// <c>route add DST/32 dev INDEX scope link [src SRC]</c>, or with <paramref name="destination"/> null
    /// <c>route add default via GATEWAY dev INDEX</c>.
    /// </summary>
    public void AddRoute(uint index, IPAddress? destination, IPAddress? source, IPAddress? gateway, string name)
    {
        var header = new byte[12];
        header[0] = AfInet;
        header[1] = (byte)(destination is null ? 0 : 32);
        header[4] = RtTableMain;
        header[5] = RtprotBoot;
        header[6] = destination is null ? RtScopeUniverse : RtScopeLink;
        header[7] = RtnUnicast;
        var message = new Message().Raw(header);
        if (destination is not null)
            message.Bytes(RtaDst, destination.GetAddressBytes());
        if (gateway is not null)
            message.Bytes(RtaGateway, gateway.GetAddressBytes());
        if (source is not null)
            message.Bytes(RtaPrefsrc, source.GetAddressBytes());
        message.U32(RtaOif, index);
        Request(RtmNewRoute, NlmFCreate | NlmFExcl, message, destination is null ? $"route add default via {gateway} dev {name}" : $"route add {destination}/32 dev {name}");
    }

    private void Request(ushort type, ushort flags, Message payload, string what)
    {
        var body = payload.ToArray();
        var packet = new byte[16 + body.Length];
        var sequence = ++_sequence;
        BinaryPrimitives.WriteUInt32LittleEndian(packet, (uint)packet.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(6), (ushort)(NlmFRequest | NlmFAck | flags));
        BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(8), sequence);
        body.CopyTo(packet, 16);
        if (Send(_fd, packet, packet.Length, 0) != packet.Length)
            throw Error($"netlink send ({what})");
        var reply = new byte[8192];
        while (true)
        {
            var length = (int)Recv(_fd, reply, reply.Length, 0);
            if (length < 0)
                throw Error($"netlink recv ({what})");
            for (var at = 0; at + 16 <= length;)
            {
                var messageLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(at));
                var messageType = BinaryPrimitives.ReadUInt16LittleEndian(reply.AsSpan(at + 4));
                var messageSequence = BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(at + 8));
                if (messageLength < 16)
                    throw new IOException($"netlink: malformed reply to {what}");
                if (messageType == NlmsgError && messageSequence == sequence)
                {
                    var errno = -BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(at + 16));
                    if (errno == 0)
                        return;
                    throw new NetworkCommandException($"`{what}` (netlink): {Marshal.GetPInvokeErrorMessage(errno)}", errno, Marshal.GetPInvokeErrorMessage(errno));
                }
                at += (messageLength + 3) & ~3;
            }
        }
    }

    public void Dispose() => Close(_fd);

    private static IOException Error(string what) => new($"{what}: {Marshal.GetLastPInvokeErrorMessage()}");

    /// <summary>A netlink payload: fixed headers, then type-length-value attributes aligned to 4 bytes.</summary>
    private sealed class Message
    {
        private readonly List<byte> _bytes = [];

        public Message Header(int size)
        {
            _bytes.AddRange(new byte[size]);
            return this;
        }

        public Message Raw(byte[] bytes)
        {
            _bytes.AddRange(bytes);
            Pad();
            return this;
        }

        public Message Bytes(ushort type, ReadOnlySpan<byte> value)
        {
            Span<byte> header = stackalloc byte[4];
            BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(4 + value.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(header[2..], type);
            _bytes.AddRange(header.ToArray());
            _bytes.AddRange(value.ToArray());
            Pad();
            return this;
        }

        public Message String(ushort type, string value) => Bytes(type, [.. System.Text.Encoding.ASCII.GetBytes(value), 0]);

        public Message U32(ushort type, uint value)
        {
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
            return Bytes(type, bytes);
        }

        public Message Nested(ushort type, Message inner) => Bytes(type, inner.ToArray());

        public byte[] ToArray() => [.. _bytes];

        private void Pad()
        {
            while (_bytes.Count % 4 != 0)
                _bytes.Add(0);
        }
    }
}
