using System.Collections.Immutable;
using Microsoft.Data.Sqlite;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>
/// A journal written by a real qubesd: its default layout, then a qube created, started, given a property and a
/// feature value that looks like Spectre markup, and shut down; then qubesd is stopped. A hostile stream (a name, a
/// caller and a feature value with ANSI sequences and control characters) is added afterwards, as a compromised writer
/// or a hand edit could: the Admin API refuses such names and values, the journal file does not.
/// </summary>
public sealed class AuditJournalFixture : IAsyncLifetime
{
    public const string Qube = "audited";
    public const string MarkupFeatureValue = "[bold red]markup[/]";
    public const string HostileFeatureValue = "\u001b[31mred\u001b[0m[bold]x[/]\r\nfake line\u0007";
    public const string HostileName = "evil\u001b]0;pwned\u0007[red]x[/]\u009b2J\u007f";

    public string StateDir { get; } = Path.Combine(Path.GetTempPath(), "qa-audit-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary><c>log --qube audited</c> as it printed while qubesd was running (a concurrent reader).</summary>
    public AuditResult WhileRunning { get; private set; } = new(-1, "", "");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(StateDir);
        var policySocket = Path.Combine(StateDir, "policy.sock");
        using (var daemon = await QubesdProcess.StartAsync(StateDir, extraArgs: ["--policy-socket", policySocket]))
        {
            await Ok(daemon, "admin.vm.Create.AppVM", "dom0", "", "name=audited label=red");
            await Ok(daemon, "admin.vm.Start", Qube);
            await Ok(daemon, "admin.vm.property.Set", Qube, "memory", "512");
            await Ok(daemon, "admin.vm.feature.Set", Qube, "look", MarkupFeatureValue);
            await Ok(daemon, "admin.vm.Shutdown", Qube);
            // Two qrexec decisions, as qrexec-daemon asks them: a denial to "personal", an allow to dom0.
            Assert.Equal("result=deny", await AskPolicy(policySocket, "source=audited\nintended_target=personal\nservice_and_arg=qubes.VMShell\n\n"));
            Assert.StartsWith("user=DEFAULT\nresult=allow", await AskPolicy(policySocket, "source=audited\nintended_target=\nservice_and_arg=qubes.GetDate\n\n"));
            // The stop is an outcome the backend reports and decisions are written in batches: wait until both are persisted.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            do
            {
                WhileRunning = await AuditRunner.RunAsync(StateDir, "log", "--qube", Qube, "--event", "stopped", "--event", "decided");
                if (WhileRunning.OutLines.Length == 3)
                    break;
                await Task.Delay(200);
            }
            while (DateTime.UtcNow < deadline);
            WhileRunning = await AuditRunner.RunAsync(StateDir, "log", "--qube", Qube);
            Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(30)));
        }
        AppendHostileQube();
    }

    private static async Task<string> AskPolicy(string socketPath, string request)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(request), System.Net.Sockets.SocketFlags.None);
        using var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await reader.ReadToEndAsync(timeout.Token);
    }

    private static async Task Ok(QubesdProcess daemon, string method, string dest, string arg = "", string? payload = null)
    {
        var response = await daemon.CallAsync(method, dest, arg, payload);
        Assert.True(response.IsOk, $"{method} {dest} {arg}: {response}");
    }

    private void AppendHostileQube()
    {
        var uuid = Guid.NewGuid();
        var pid = JournalSettings.PersistenceIdOf(uuid);
        var cause = EventCause.Admin("dom0\u001b[2J", "admin.vm.Create.AppVM");
        var created = new QubeCreated(uuid, HostileName, QubeClass.AppVM, 99, "red",
            ImmutableSortedDictionary<string, string>.Empty, [], ImmutableSortedDictionary<string, string>.Empty, null, null)
        {
            Time = DateTimeOffset.UtcNow,
            Cause = cause,
        };
        var createdBytes = EventCodec.Encode(created);
        var feature = new QubeFeatureSet("evil", HostileFeatureValue)
        {
            Time = DateTimeOffset.UtcNow,
            Cause = cause,
            PrevHash = EventCodec.Hash(pid, 1, "qube.created.v1", createdBytes),
        };
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(StateDir, "journal.db") }.ToString());
        connection.Open();
        JournalRows.Insert(connection, pid, 1, "qube.created.v1", ";admin;lifecycle;", createdBytes);
        JournalRows.Insert(connection, pid, 2, "qube.feature-set.v1", ";admin;property;", EventCodec.Encode(feature));
    }

    public Task DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }
}
