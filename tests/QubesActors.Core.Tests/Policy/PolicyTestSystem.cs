using System.Collections.Immutable;
using QubesActors.Core.Policy;
using Xunit;

namespace QubesActors.Core.Tests.Policy;

/// <summary>A small system like upstream's tests: dom0, a few AppVMs, disposable templates, tags.</summary>
public static class PolicyTestSystem
{
    public static readonly Guid Dom0Uuid = Guid.Empty;
    public static readonly Guid TestVm1Uuid = Guid.Parse("c9024a97-9b15-46cc-8341-be9e1f8a9f61");
    public static readonly Guid TestVm2Uuid = Guid.Parse("b3eb69d0-f9d9-4c3c-ad5c-454500303ea4");
    public static readonly Guid TestVm3Uuid = Guid.Parse("fa6d56e8-a89d-4106-aa62-22e172a43c8b");
    public static readonly Guid DefaultDvmUuid = Guid.Parse("f3e538bd-4427-4697-bed7-45ef3270df21");
    public static readonly Guid TestInvalidDvmUuid = Guid.Parse("c4fa3586-a6b6-4dc4-bdf4-d8c4a2a5a8a3");
    public static readonly Guid TestNoDvmUuid = Guid.Parse("53a450b9-a454-4416-8adb-46812257ad29");
    public static readonly Guid TestTemplateUuid = Guid.Parse("a9fe2b04-9fd5-4e95-b39f-c5a7e2e72f4e");
    public static readonly Guid TestStandaloneUuid = Guid.Parse("6d7a02b5-e9b2-4bcb-9d38-5bfbb1e1b9d5");
    public static readonly Guid InternalUuid = Guid.Parse("2d5b3d2f-94d5-4a64-9c3c-9c8c3f5d44a1");

    public static SystemInfo Default { get; } = Build();

    private static SystemInfo Build()
    {
        var d = ImmutableSortedDictionary.CreateBuilder<string, SystemDomain>(StringComparer.Ordinal);
        d["dom0"] = new SystemDomain("AdminVM", ["dom0-tag"], false, "default-dvm", "Running", Dom0Uuid);
        d["test-vm1"] = new SystemDomain("AppVM", ["tag1", "tag2"], false, "default-dvm", "Running", TestVm1Uuid);
        d["test-vm2"] = new SystemDomain("AppVM", ["tag2"], false, "default-dvm", "Halted", TestVm2Uuid);
        d["test-vm3"] = new SystemDomain("AppVM", ["tag3"], true, "default-dvm", "Halted", TestVm3Uuid);
        d["default-dvm"] = new SystemDomain("AppVM", [], true, "default-dvm", "Halted", DefaultDvmUuid);
        d["test-invalid-dvm"] = new SystemDomain("AppVM", ["tag1"], false, "test-vm1", "Halted", TestInvalidDvmUuid);
        d["test-no-dvm"] = new SystemDomain("AppVM", [], false, null, "Halted", TestNoDvmUuid);
        d["test-template"] = new SystemDomain("TemplateVM", ["tag1"], false, "default-dvm", "Halted", TestTemplateUuid);
        d["test-standalone"] = new SystemDomain("StandaloneVM", ["tag2"], false, "default-dvm", "Halted", TestStandaloneUuid);
        d["sys-internal"] = new SystemDomain("AppVM", ["tag1"], true, null, "Running", InternalUuid, Internal: true);
        return new SystemInfo(d.ToImmutable());
    }

    public static CompiledPolicy Load(string text) => CompiledPolicy.Parse("test.policy", text);

    public static PolicyDecision Eval(string policy, string source, string target, string service = "test.Service",
        string argument = "+", SystemInfo? system = null) =>
        Load(policy).Evaluate(new PolicyRequest(service, argument, source, target), system ?? Default);

    public static PolicySyntaxException SyntaxError(string text) =>
        Assert.Throws<PolicySyntaxException>(() => Load(text));

    public static string U(Guid g) => "uuid:" + g.ToString("D");
}
