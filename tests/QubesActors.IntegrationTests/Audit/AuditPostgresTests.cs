using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>
/// qubes-audit on a PostgreSQL journal written by a real qubesd, both configured by the same --set options, read while
/// qubesd runs. Needs QUBES_TEST_POSTGRES (the cake Test target and CI always set it); without it the test fails.
/// </summary>
public sealed class AuditPostgresTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Log_show_and_verify_read_a_postgres_journal_from_the_same_settings_as_qubesd()
    {
        // Like the runtime's PostgreSQL specs: a run without a server fails rather than passing without checking anything.
        var server = Environment.GetEnvironmentVariable("QUBES_TEST_POSTGRES") is { Length: > 0 } s
            ? s
            : throw new InvalidOperationException("QUBES_TEST_POSTGRES is not set: this test needs an Npgsql connection string (tools/ci/postgres.sh start; CI sets it through build.cake)");
        log.WriteLine($"PostgreSQL: {new NpgsqlConnectionStringBuilder(server).Host}");
        var database = "audit_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(server))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync();
        }
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = database, Pooling = false }.ToString();
        string[] sets = ["--set", "qubesd.journal.provider=postgresql", "--set", $"qubesd.journal.connection-string={connectionString}"];
        var stateDir = Path.Combine(Path.GetTempPath(), "qa-audit-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(stateDir);
        try
        {
            using var daemon = await QubesdProcess.StartAsync(stateDir, extraArgs: sets);
            Assert.True((await daemon.CallAsync("admin.vm.Start", "work")).IsOk);
            var result = await AuditRunner.RunAsync(stateDir, ["log", .. sets, "--qube", "work"]);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(2, result.OutLines.Length);
            Assert.Contains("qube.created", result.OutLines[0]);
            Assert.Contains("qube.started", result.OutLines[1]);
            Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(30)));

            // qubesd sealed what it wrote (at the latest when it stopped); the chains and the seals verify on PostgreSQL.
            var verify = await AuditRunner.RunAsync(stateDir, ["verify", .. sets]);
            Assert.True(verify.ExitCode == 0, verify.ToString());
            Assert.Matches(@"\d+ seals, the last of ", verify.Out);
            Assert.DoesNotContain("after the last seal", verify.Out);
            var show = await AuditRunner.RunAsync(stateDir, ["show", .. sets, "work"]);
            Assert.True(show.ExitCode == 0, show.ToString());
            Assert.Contains(show.OutLines, l => l.Contains("qube.started", StringComparison.Ordinal));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using (var admin = new NpgsqlConnection(server))
            {
                await admin.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
                await drop.ExecuteNonQueryAsync();
            }
            try
            {
                Directory.Delete(stateDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
