using FsCheck;
using FsCheck.Fluent;
using QubesActors.Core.Devices;

namespace QubesActors.Core.Tests.Devices;

/// <summary>Arbitraries for the device model; registered with <c>[Property(Arbitrary = [typeof(DeviceGenerators)])]</c>.</summary>
public static class DeviceGenerators
{
    private const string Letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    private const string Digits = "0123456789";
    private const string Hex = "0123456789abcdef";

    private static Gen<string> StringOf(string alphabet, int min, int max) =>
        from length in Gen.Choose(min, max)
        from chars in Gen.ArrayOf(Gen.Elements(alphabet.ToCharArray()), length)
        select new string(chars);

    public static Gen<string> QubeNameGen =>
        from first in Gen.Elements(Letters.ToCharArray())
        from rest in StringOf(Letters + Digits + "_.-", 0, 12)
        select first + rest;

    // No lone '_' (the API argument's wildcard spelling).
    public static Gen<string> PortIdGen => StringOf(Letters + Digits + "_.-", 1, 10).Where(p => p != "_");

    public static Gen<string> InterfaceCodeGen =>
        from cls in Gen.Elements('p', 'u', 'b', 'm')
        from digits in StringOf(Hex, 6, 6)
        select cls + digits;

    // Device ids as backends build them, vendor:product:serial:interfaces; serials avoid '*' and '_' runs.
    public static Gen<string> DeviceIdGen =>
        from vendor in StringOf(Hex, 4, 4)
        from product in StringOf(Hex, 4, 4)
        from serial in StringOf(Letters + Digits + ".-", 0, 12)
        from codes in Gen.ListOf(InterfaceCodeGen, 1).Select(c => string.Concat(c))
        select $"{vendor}:{product}:{serial}:{codes}";

    // Every printable ASCII character, weighted towards the ones that need escaping.
    public static Gen<string> ValueGen =>
        Gen.ArrayOf(Gen.Frequency(
                (3, Gen.Elements(Enumerable.Range(' ', '~' - ' ' + 1).Select(c => (char)c).ToArray())),
                (1, Gen.Elements('\'', '\\', ' ', '='))))
            .Select(cs => new string(cs));

    public static Gen<string> KeyGen =>
        StringOf(Letters + Digits + "-_.:!#$%&()*+,/;<>?@[]^{|}~\\", 1, 10);

    public static Gen<DeviceClass> ClassGen => Gen.Elements(DeviceClasses.All.ToArray());

    public static Gen<DeviceOptions> OptionsGen =>
        Gen.ListOf(from k in StringOf(Letters + "-", 1, 16) from v in ValueGen select (k, v))
            .Select(items => items.Aggregate(DeviceOptions.Empty, (o, kv) => o.With(kv.k, kv.v)));

    public static Gen<VirtualDevice> VirtualDeviceGen =>
        from backend in Gen.OneOf(QubeNameGen, Gen.Constant("*"))
        from port in Gen.OneOf(PortIdGen, Gen.Constant("*"))
        from id in Gen.OneOf(DeviceIdGen, Gen.Constant("*"), Gen.Constant(DeviceId.UnknownValue))
        select new VirtualDevice(backend, port, id);

    private static Gen<string?> OptionalText => Gen.OneOf(Gen.Constant<string?>(null), ValueGen.Select(v => (string?)v));

    public static Gen<DeviceInfo> DeviceInfoGen =>
        from cls in ClassGen
        from backend in QubeNameGen
        from port in PortIdGen
        from id in DeviceIdGen
        from vendor in OptionalText
        from product in OptionalText
        from manufacturer in OptionalText
        from name in OptionalText
        from serial in OptionalText
        from attachment in Gen.OneOf(Gen.Constant<string?>(null), QubeNameGen.Select(n => (string?)n))
        from interfaces in Gen.ListOf(InterfaceCodeGen).Select(c => string.Concat(c))
        from options in OptionsGen
        select new DeviceInfo(cls, new DevicePort(backend, port), new DeviceId(id))
        {
            Vendor = vendor,
            Product = product,
            Manufacturer = manufacturer,
            Name = name,
            Serial = serial,
            Attachment = attachment,
            Interfaces = interfaces,
            Options = options,
        };

    public static Gen<DeviceAssignment> AssignmentGen =>
        from cls in ClassGen
        from device in VirtualDeviceGen
        from frontend in Gen.OneOf(Gen.Constant<string?>(null), QubeNameGen.Select(n => (string?)n))
        from mode in Gen.Elements(AssignmentMode.Manual, AssignmentMode.AskToAttach, AssignmentMode.AutoAttach, AssignmentMode.Required)
        from options in OptionsGen
        select new DeviceAssignment(cls, device, frontend, mode, options);

    public static Arbitrary<VirtualDevice> VirtualDevices() => VirtualDeviceGen.ToArbitrary();
    public static Arbitrary<DeviceInfo> DeviceInfos() => DeviceInfoGen.ToArbitrary();
    public static Arbitrary<DeviceAssignment> Assignments() => AssignmentGen.ToArbitrary();
    public static Arbitrary<DeviceOptions> Options() => OptionsGen.ToArbitrary();
}
