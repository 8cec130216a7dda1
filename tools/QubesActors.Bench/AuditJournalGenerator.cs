using System.Collections.Immutable;
using System.Diagnostics;
using Akka;
using Akka.Actor;
using Akka.Persistence;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;

namespace QubesActors.Bench;

/// <summary>
/// A journal as months of use would leave it, for the audit viewer's benchmarks: N qubes (a template, sys-net,
/// sys-firewall, the rest AppVMs named app-NNNN) over 90 days, each living through start/shutdown sessions with
/// pauses, crashes followed by a scheduled restart, kills, property, feature, firewall and device changes, plus qrexec
/// policy decisions (a fifth of the events) between them; then sealed as qubesd seals. Events are the runtime's own
/// records, chained by <see cref="JournalStream"/> and written through Akka.Persistence.Sql's journal plugin, so the
/// rows are byte for byte what qubesd writes. Deterministic for a given seed.
/// </summary>
public static class AuditJournalGenerator
{
    private static readonly string[] Labels = ["red", "orange", "yellow", "green", "gray", "blue", "purple", "black"];
    private static readonly string[] Services = ["qubes.Filecopy", "qubes.OpenInVM", "qubes.VMShell", "qubes.GetDate", "qubes.ClipboardPaste", "qubes.OpenURL", "qubes.PdfConvert"];
    private static readonly string[] Callers = ["dom0 (uid=1000 pid=4211)", "dom0 (uid=0 pid=1)", "sys-gui"];

    public static string NameOf(int i) => i switch { 0 => "debian-13", 1 => "sys-net", 2 => "sys-firewall", _ => $"app-{i:D4}" };

    public sealed record Result(long Events, long Seals, TimeSpan Elapsed);

    public static async Task<Result> GenerateAsync(JournalSettings settings, int qubes, long events, int seed = 1)
    {
        var clock = Stopwatch.StartNew();
        settings.EnsureStorage();
        // WAL is a property of the file: set once here, as qubesd's connections do.
        using (settings.OpenConnection()) { }
        var random = new Random(seed);
        var end = DateTimeOffset.UtcNow.AddHours(-1);
        var start = end.AddDays(-90);
        var policyShare = events / 5;
        var perQube = (events - policyShare) / qubes;

        // Every event with its stream, in time order (ties: stream order) — the order qubesd would have written them.
        var all = new List<(DateTimeOffset Time, int Stream, DomainEvent Event)>((int)events + qubes);
        var pids = new string[qubes + 1];
        for (var q = 0; q < qubes; q++)
        {
            var uuid = new Guid(random.NextInt64().ToString("x16") + random.NextInt64().ToString("x16"));
            pids[q] = JournalSettings.PersistenceIdOf(uuid);
            foreach (var e in QubeLife(q, uuid, qubes, perQube, start, end, random))
                all.Add((e.Time, q, e));
        }
        pids[qubes] = PolicyDecisionRecorded.PersistenceId;
        for (long i = 0; i < policyShare; i++)
        {
            var e = Decision(random, qubes, start.AddSeconds(random.NextDouble() * (end - start).TotalSeconds));
            all.Add((e.Time, qubes, e));
        }
        all.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Stream.CompareTo(b.Stream));
        Console.Error.WriteLine($"  {all.Count:N0} events planned in {clock.Elapsed.TotalSeconds:0.0} s; writing");

        var system = ActorSystem.Create("audit-generator", RuntimeConfig.For(settings).WithFallback("akka.loglevel = WARNING"));
        try
        {
            var journal = Persistence.Instance.Apply(system).JournalFor(null);
            var streams = pids.Select(pid => new JournalStream(pid, 0, "", journal)).ToArray();
            const int Batch = 10_000;
            for (var offset = 0; offset < all.Count; offset += Batch)
            {
                var slice = all.GetRange(offset, Math.Min(Batch, all.Count - offset));
                // One AtomicWrite per stream run, in the slice's order: consecutive events of one stream go together.
                var writes = new List<(JournalStream Stream, PendingWrite Write)>();
                var waiter = system.ActorOf(Props.Create(() => new WriteWaiter()));
                var i = 0;
                while (i < slice.Count)
                {
                    var s = slice[i].Stream;
                    var run = new List<DomainEvent>();
                    while (i < slice.Count && slice[i].Stream == s)
                        run.Add(slice[i++].Event);
                    var write = streams[s].Prepare(run, waiter);
                    streams[s].Commit(write);
                    writes.Add((streams[s], write));
                }
                var message = new WriteMessages([.. writes.SelectMany(w => w.Write.Message.Messages)], waiter, 1);
                await waiter.Ask<Done>(new Expect(journal, message), TimeSpan.FromMinutes(5));
                if ((offset / Batch) % 20 == 0)
                    Console.Error.WriteLine($"  {offset + slice.Count:N0}/{all.Count:N0} written ({clock.Elapsed.TotalSeconds:0.0} s)");
            }
            var seals = await SealAsync(settings, system, journal);
            return new Result(all.Count, seals, clock.Elapsed);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>Seals the whole journal as qubesd's sealer would (same pure code), 20,000 rows per seal.</summary>
    private static async Task<long> SealAsync(JournalSettings settings, ActorSystem system, IActorRef journal)
    {
        var position = JournalSealer.ReadPosition(settings) ?? throw new InvalidOperationException("no journal table after writing");
        var stream = new JournalStream(JournalSealed.PersistenceId, position.SealSequenceNr, position.SealLink, journal);
        long seals = 0;
        while (true)
        {
            List<JournalRow> rows;
            using (var connection = settings.OpenConnection())
                rows = JournalSealer.ReadRowsAfter(connection, position.ToOrdering, 20_000);
            if (JournalSealing.Draft(position, rows, _ => true, out _) is not { } draft)
                return seals;
            var waiter = system.ActorOf(Props.Create(() => new WriteWaiter()));
            var seal = new JournalSealed(draft.FromOrdering, draft.ToOrdering, draft.Rows, draft.Digest, draft.Heads)
            { Time = DateTimeOffset.UtcNow, Cause = EventCause.System("journal sealer") };
            var write = stream.Prepare([seal], waiter);
            await waiter.Ask<Done>(new Expect(journal, write.Message), TimeSpan.FromMinutes(1));
            stream.Commit(write);
            position = new SealPosition(draft.ToOrdering, draft.Digest, write.LastSequenceNr, write.LastHash);
            seals++;
        }
    }

    private static IEnumerable<QubeEvent> QubeLife(int q, Guid uuid, int qubes, long budget, DateTimeOffset start, DateTimeOffset end, Random random)
    {
        var name = NameOf(q);
        var admin = EventCause.Admin(Callers[random.Next(Callers.Length)], "admin.vm.Create.AppVM");
        var klass = q == 0 ? QubeClass.TemplateVM : QubeClass.AppVM;
        var properties = ImmutableSortedDictionary<string, string>.Empty;
        if (q != 0)
            properties = properties.Add("template", NameOf(0));
        if (q == 1)
            properties = properties.Add("provides_network", "True").Add("netvm", "");
        if (q == 2)
            properties = properties.Add("provides_network", "True").Add("netvm", NameOf(1));
        var t = start.AddMinutes(random.Next(0, 60 * 24 * 10));
        yield return new QubeCreated(uuid, name, klass, q + 1, Labels[q % Labels.Length], properties, [], ImmutableSortedDictionary<string, string>.Empty, null, null)
        { Time = t, Cause = admin };
        long written = 1;
        var sessionSpan = (end - t).TotalMinutes / Math.Max(1, budget / 8.0);
        while (written < budget && t < end)
        {
            // Halted for a while, then a session.
            t = t.AddMinutes(random.NextDouble() * sessionSpan * 0.5);
            var caller = EventCause.Admin(Callers[random.Next(Callers.Length)], "admin.vm.Start");
            yield return new QubeStarted(PowerState.Running, q <= 1 ? null : NameOf(2)) { Time = t, Cause = caller };
            written++;
            var stop = t.AddMinutes(random.NextDouble() * sessionSpan);
            while (written < budget - 3 && t < stop)
            {
                t = t.AddMinutes(random.NextDouble() * sessionSpan * 0.2 + 0.01);
                var roll = random.Next(100);
                var cause = EventCause.Admin(Callers[random.Next(Callers.Length)], "admin.vm.property.Set");
                IEnumerable<QubeEvent> change = roll switch
                {
                    < 30 => [new QubePropertySet("memory", (400 + 100 * random.Next(20)).ToString()) { Time = t, Cause = cause }],
                    < 45 => [new QubeFeatureSet($"app.f{random.Next(5)}", $"v{random.Next(1000)}") { Time = t, Cause = cause with { Detail = "admin.vm.feature.Set" } }],
                    < 55 => [new QubeFirewallSet([$"action=accept dsthost=10.{random.Next(256)}.0.0/16", "action=drop"]) { Time = t, Cause = cause with { Detail = "admin.vm.firewall.Set" } }],
                    < 65 => [new QubeDeviceAttached("usb", $"sys-usb:2-{random.Next(1, 4)}:0781:5583", ImmutableSortedDictionary<string, string>.Empty) { Time = t, Cause = cause with { Detail = "admin.vm.device.usb.Attach" } },
                             new QubeDeviceDetached("usb", $"sys-usb:2-1:0781:5583", "detached") { Time = t.AddMinutes(2), Cause = cause with { Detail = "admin.vm.device.usb.Detach" } }],
                    < 80 => [new QubePaused { Time = t, Cause = cause with { Detail = "admin.vm.Pause" } },
                             new QubeUnpaused { Time = t.AddMinutes(random.NextDouble() * 30), Cause = cause with { Detail = "admin.vm.Unpause" } }],
                    _ => [new QubePropertySet("label", Labels[random.Next(Labels.Length)]) { Time = t, Cause = cause }],
                };
                foreach (var e in change)
                {
                    t = e.Time;
                    written++;
                    yield return e;
                }
            }
            t = t.AddMinutes(1);
            var end_ = random.Next(100);
            if (end_ < 8)
            {
                // A crash, the supervisor's restart, and sometimes the start limit.
                yield return new QubeStopped(StopKind.Crashed, "domain exited with status 139") { Time = t, Cause = EventCause.Backend("domain died") };
                yield return new QubeRestartScheduled(1, TimeSpan.FromSeconds(1)) { Time = t, Cause = EventCause.Supervisor("restart policy permanent") };
                written += 2;
                if (end_ < 2)
                {
                    yield return new QubeFailed("restarted 5 times within 60 s") { Time = t.AddSeconds(2), Cause = EventCause.Supervisor("restart intensity") };
                    yield return new QubeFailedReset { Time = t.AddMinutes(10), Cause = EventCause.Admin(Callers[0], "admin.vm.ResetFailed") };
                    written += 2;
                    t = t.AddMinutes(10);
                }
            }
            else
            {
                yield return new QubeStopped(end_ < 14 ? StopKind.Killed : StopKind.Shutdown, null) { Time = t, Cause = EventCause.Admin(Callers[random.Next(Callers.Length)], end_ < 14 ? "admin.vm.Kill" : "admin.vm.Shutdown") };
                written++;
            }
        }
    }

    private static PolicyDecisionRecorded Decision(Random random, int qubes, DateTimeOffset time)
    {
        var source = NameOf(3 + random.Next(Math.Max(1, qubes - 3)));
        var toDisp = random.Next(10) == 0;
        var target = toDisp ? "@dispvm" : NameOf(3 + random.Next(Math.Max(1, qubes - 3)));
        var allow = random.Next(100) < 70;
        var service = Services[random.Next(Services.Length)];
        var resolved = allow ? (toDisp ? $"disp{random.Next(1000, 9999)}" : target) : null;
        return new PolicyDecisionRecorded(service, "", source, target, target, resolved, allow ? "allow" : "deny", allow ? "Allow" : "Deny",
            allow ? null : "denied by policy", "/etc/qubes/policy.d/30-user.policy", 10 + random.Next(40), "qrexec-policy-daemon",
            $"qrexec: {service}: {source} -> {target}: {(allow ? "allowed to " + resolved : "denied")}")
        { Time = time, Cause = new EventCause(EventCause.PolicyKind, "qrexec-policy-daemon") };
    }

    private sealed record Expect(IActorRef Journal, WriteMessages Message);

    /// <summary>Sends one WriteMessages and answers Done once the journal confirmed all of it.</summary>
    private sealed class WriteWaiter : ReceiveActor
    {
        private IActorRef? _asker;

        public WriteWaiter()
        {
            Receive<Expect>(e =>
            {
                _asker = Sender;
                e.Journal.Tell(e.Message);
            });
            Receive<WriteMessagesSuccessful>(_ =>
            {
                _asker?.Tell(Done.Instance);
                Context.Stop(Self);
            });
            Receive<WriteMessagesFailed>(f =>
            {
                _asker?.Tell(new Status.Failure(f.Cause));
                Context.Stop(Self);
            });
            Receive<WriteMessageRejected>(r =>
            {
                _asker?.Tell(new Status.Failure(r.Cause));
                Context.Stop(Self);
            });
            ReceiveAny(_ => { });
        }
    }
}
