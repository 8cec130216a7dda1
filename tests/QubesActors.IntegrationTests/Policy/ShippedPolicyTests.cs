using System.Collections.Immutable;
using QubesActors.AdminApi.Methods;
using QubesActors.Core.Policy;
using Xunit;

namespace QubesActors.IntegrationTests.Policy;

/// <summary>The shipped policy files load with the real language and the generated admin policy matches the method table.</summary>
public sealed class ShippedPolicyTests
{
    private static string SourceConfig
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QubesActors.sln")))
                dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("source tree not found"), "config");
        }
    }

    [Theory]
    [InlineData("90-admin-default.policy")]
    [InlineData("90-admin-policy-default.policy")]
    public void The_generated_admin_policy_is_in_step_with_the_method_table(string name)
    {
        var expected = name == "90-admin-default.policy" ? AdminPolicyFiles.AdminDefault(MethodTable.Default) : AdminPolicyFiles.PolicyAdminDefault(MethodTable.Default);
        var path = Path.Combine(SourceConfig, "policy.seed", name);
        // QA_REGENERATE_POLICY=1 rewrites the file after a change to the table.
        if (Environment.GetEnvironmentVariable("QA_REGENERATE_POLICY") == "1")
            File.WriteAllText(path, expected);
        Assert.Equal(expected, File.ReadAllText(path));
    }

    [Fact]
    public void The_shipped_and_seeded_policy_loads_and_denies_admin_calls_from_qubes()
    {
        var run = Path.Combine(Path.GetTempPath(), $"qa-shipped-{Guid.NewGuid():N}");
        try
        {
            Runtime.Policy.PolicyFiles.Seed(Path.Combine(SourceConfig, "policy.seed"), run);
            var policy = CompiledPolicy.LoadDirectories([run, Path.Combine(SourceConfig, "policy.d")]);
            var system = new SystemInfo(new Dictionary<string, SystemDomain>
            {
                ["dom0"] = new("AdminVM", [], Uuid: Guid.Empty, PowerState: "Running"),
                ["work"] = new("AppVM", [], DefaultDispVm: "default-dvm", Uuid: Guid.NewGuid()),
                ["default-dvm"] = new("AppVM", [], TemplateForDispVms: true, Uuid: Guid.NewGuid()),
                ["fedora"] = new("TemplateVM", [], Uuid: Guid.NewGuid()),
                ["sys-net"] = new("AppVM", [], Uuid: Guid.NewGuid()),
            }.ToImmutableSortedDictionary(StringComparer.Ordinal));
            Assert.Equal(PolicyResult.Deny, policy.Evaluate(PolicyRequest.Of("admin.vm.List", "work", "dom0"), system).Result);
            Assert.Equal(PolicyResult.Deny, policy.Evaluate(PolicyRequest.Of("policy.Replace+30-user", "work", "dom0"), system).Result);
            var date = policy.Evaluate(PolicyRequest.Of("qubes.GetDate", "work", ""), system);
            Assert.Equal((PolicyResult.Allow, "dom0"), (date.Result, date.Target));
            var shell = policy.Evaluate(PolicyRequest.Of("qubes.VMShell", "work", "@dispvm"), system);
            Assert.Equal((PolicyResult.Allow, "@dispvm:default-dvm"), (shell.Result, shell.Target));
            Assert.Equal(PolicyResult.Ask, policy.Evaluate(PolicyRequest.Of("qubes.Filecopy", "work", "sys-net"), system).Result);
            var proxy = policy.Evaluate(PolicyRequest.Of("qubes.UpdatesProxy", "fedora", ""), system);
            Assert.Equal((PolicyResult.Allow, "sys-net"), (proxy.Result, proxy.Target));

            // an include file edited in the runtime directory takes effect
            File.WriteAllText(Path.Combine(run, "include", "admin-global-ro"), "work @adminvm allow\n");
            policy = CompiledPolicy.LoadDirectories([run, Path.Combine(SourceConfig, "policy.d")]);
            Assert.Equal(PolicyResult.Allow, policy.Evaluate(PolicyRequest.Of("admin.vm.List", "work", "dom0"), system).Result);
        }
        finally
        {
            Directory.Delete(run, recursive: true);
        }
    }
}
