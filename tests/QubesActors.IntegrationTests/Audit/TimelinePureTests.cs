using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using QubesActors.Audit.Journal;
using QubesActors.Audit.Timeline;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Persistence;
using QubesActors.Runtime.Policy;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>The timeline logic on hand-made events: spans, lives, the state at a moment, stats and the report data.</summary>
public sealed class TimelinePureTests
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly EventCause Admin = EventCause.Admin("dom0", "test");

    /// <summary>Events of several streams in global order, through the viewer's own builder (names learnt from creations).</summary>
    private sealed class Journal
    {
        private readonly AuditEventBuilder _builder = new();
        private readonly Dictionary<string, long> _seq = [];
        private long _ordering;
        public List<AuditEvent> Events { get; } = [];

        public void Add(string stream, double seconds, DomainEvent e)
        {
            _seq[stream] = _seq.GetValueOrDefault(stream) + 1;
            Events.Add(_builder.Build(++_ordering, stream, _seq[stream], e));
        }
    }

    private static T At<T>(T e, double seconds, EventCause? cause = null) where T : DomainEvent => e with { Time = T0.AddSeconds(seconds), Cause = cause ?? Admin };

    private static QubeCreated Created(string name, Guid uuid, string? template = null, string label = "blue") => new(uuid, name, QubeClass.AppVM, 5, label,
        template is null ? ImmutableSortedDictionary<string, string>.Empty : ImmutableSortedDictionary<string, string>.Empty.Add("template", template),
        [], ImmutableSortedDictionary<string, string>.Empty, null, null) { Time = T0, Cause = Admin };

    private static string Pid(Guid uuid) => JournalSettings.PersistenceIdOf(uuid);

    /// <summary>work: created at 0, started at 10, paused 20, unpaused 25, crashed at 40, restart scheduled, started 42.</summary>
    private static (Journal Journal, Guid Uuid) Work()
    {
        var j = new Journal();
        var uuid = Guid.NewGuid();
        var s = Pid(uuid);
        j.Add(s, 0, At(Created("work", uuid, "tpl"), 0));
        j.Add(s, 5, At(new QubePropertySet("memory", "512") { Time = T0, Cause = Admin }, 5));
        j.Add(s, 10, At(new QubeStarted(PowerState.Running, "sys-net") { Time = T0, Cause = Admin }, 10));
        j.Add(s, 20, At(new QubePaused() { Time = T0, Cause = Admin }, 20));
        j.Add(s, 25, At(new QubeUnpaused() { Time = T0, Cause = Admin }, 25));
        j.Add(s, 40, At(new QubeStopped(StopKind.Crashed, "oops") { Time = T0, Cause = Admin }, 40, EventCause.Backend("domain died")));
        j.Add(s, 40, At(new QubeRestartScheduled(1, TimeSpan.FromSeconds(1)) { Time = T0, Cause = Admin }, 40, EventCause.Supervisor("restart 1")));
        j.Add(s, 42, At(new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin }, 42, EventCause.Supervisor("restart 1")));
        return (j, uuid);
    }

    [Fact]
    public void Spans_follow_every_power_change_and_the_last_one_ends_now()
    {
        var (j, _) = Work();
        var builder = new QubeHistoryBuilder("work");
        j.Events.ForEach(builder.Add);
        var life = Assert.Single(builder.Build(T0.AddSeconds(100)).Lives);
        Assert.Equal(
            [(PowerState.Halted, 0, 10, false), (PowerState.Running, 10, 20, false), (PowerState.Paused, 20, 25, false), (PowerState.Running, 25, 40, false),
             (PowerState.Halted, 40, 42, false), (PowerState.Running, 42, 100, true)],
            life.Spans.Select(s => (s.State, (int)(s.Start - T0).TotalSeconds, (int)(s.End - T0).TotalSeconds, s.Open)));
        Assert.Equal(new LifeCounts(2, 1, 1, 0, 0, 0, 0), life.Counts);
        Assert.Equal(["qube.stopped", "qube.restart-scheduled", "qube.started"], life.RestartEvents.Select(e => e.Name));
    }

    [Fact]
    public void A_recreated_name_has_two_lives_and_a_decision_goes_to_the_life_of_its_time()
    {
        var j = new Journal();
        Guid a = Guid.NewGuid(), b = Guid.NewGuid();
        j.Add(Pid(a), 0, At(Created("p", a), 0));
        j.Add(Pid(a), 10, At(new QubeRemoved() { Time = T0, Cause = Admin }, 10));
        j.Add(Pid(b), 20, At(Created("p", b), 20));
        j.Add(PolicyDecisionRecorded.PersistenceId, 30, At(Decision("p", "deny"), 30, new EventCause(EventCause.PolicyKind)));
        var builder = new QubeHistoryBuilder("p");
        j.Events.ForEach(builder.Add);
        var lives = builder.Build(T0.AddSeconds(50)).Lives;
        Assert.Equal(2, lives.Length);
        Assert.Equal(T0.AddSeconds(10), lives[0].Removed);
        Assert.False(lives[0].Spans[^1].Open);
        Assert.Equal(1, lives[1].Counts.Denials);
        Assert.Equal(0, lives[0].Counts.PolicyDecisions);
    }

    private static PolicyDecisionRecorded Decision(string source, string result) =>
        new("qubes.VMShell", "", source, "target", "target", null, result, "Deny", "no rule", null, null, "policy socket", "line") { Time = T0, Cause = Admin };

    [Fact]
    public void State_at_a_moment_replays_up_to_it_with_defaults_from_the_template_and_globals_named()
    {
        var (j, _) = Work();
        var tpl = Guid.NewGuid();
        var template = new QubeCreated(tpl, "tpl", QubeClass.TemplateVM, 2, "black", ImmutableSortedDictionary<string, string>.Empty.Add("vcpus", "4"),
            [], ImmutableSortedDictionary<string, string>.Empty, null, null) { Time = T0, Cause = Admin };
        var templateState = QubeStateAtBuilder.Replay([new AuditEventBuilder().Build(1, Pid(tpl), 1, template)], "tpl", T0.AddSeconds(1))!.Value.State;

        var before = QubeStateAtBuilder.Replay(j.Events, "work", T0.AddSeconds(4))!.Value.State;
        Assert.Equal(PowerState.Halted, before.Power);
        var props = QubeStateAtBuilder.Properties(before, templateState).ToDictionary(p => p.Name);
        Assert.Equal(new PropertyAt("memory", "400", "default"), props["memory"]);
        Assert.Equal(new PropertyAt("vcpus", "4", "default (template tpl)"), props["vcpus"]);
        Assert.Equal(new PropertyAt("netvm", null, "default (global default_netvm)"), props["netvm"]);

        var running = QubeStateAtBuilder.Replay(j.Events, "work", T0.AddSeconds(21))!.Value.State;
        Assert.Equal(PowerState.Paused, running.Power);
        Assert.Equal("sys-net", running.ConnectedNetVm);
        Assert.Equal(new PropertyAt("memory", "512", "set"), QubeStateAtBuilder.Properties(running, templateState).Single(p => p.Name == "memory"));
        Assert.Null(QubeStateAtBuilder.Replay(j.Events, "work", T0.AddSeconds(-1)));
        Assert.Equal(new PropertyAt("vcpus", null, "default (template tpl, not found)"), QubeStateAtBuilder.Properties(running, null).Single(p => p.Name == "vcpus"));
    }

    [Fact]
    public void Stats_count_starts_crashes_restarts_loops_denials_and_active_time_busiest_first()
    {
        var (j, uuid) = Work();
        j.Add(Pid(uuid), 50, At(new QubeStopped(StopKind.Crashed, "again") { Time = T0, Cause = Admin }, 50, EventCause.Backend("domain died")));
        j.Add(Pid(uuid), 50, At(new QubeFailed("start limit hit") { Time = T0, Cause = Admin }, 50, EventCause.Supervisor("limit")));
        var quiet = Guid.NewGuid();
        j.Add(Pid(quiet), 0, At(Created("quiet", quiet), 0));
        j.Add(PolicyDecisionRecorded.PersistenceId, 60, At(Decision("quiet", "deny"), 60));
        j.Add(PolicyDecisionRecorded.PersistenceId, 61, At(Decision("quiet", "allow"), 61));
        var aggregator = new StatsAggregator();
        j.Events.ForEach(aggregator.Add);
        var stats = aggregator.Build(T0.AddSeconds(100));
        Assert.Equal(["work", "quiet"], stats.Select(s => s.Name));
        var work = stats[0];
        Assert.Equal((2, 2, 1, 1, 0), (work.Starts, work.Crashes, work.RestartsScheduled, work.RestartLoops, work.Denied));
        // Running 10-40 (pause included: active) and 42-50.
        Assert.Equal(TimeSpan.FromSeconds(38), work.RunningTime);
        Assert.Equal(T0.AddSeconds(42), work.LastStart);
        Assert.Equal("Halted (failed)", work.Status);
        Assert.Equal((1, 3L), (stats[1].Denied, stats[1].Events));
    }

    [Fact]
    public void Report_data_escapes_everything_that_could_end_a_script_element_and_keeps_only_active_spans()
    {
        var j = new Journal();
        var uuid = Guid.NewGuid();
        const string hostile = "</script><script>alert(1)</script>\u2028\u2029&amp;'\"";
        j.Add(Pid(uuid), 0, At(Created(hostile, uuid, label: "green"), 0));
        j.Add(Pid(uuid), 10, At(new QubeStarted(PowerState.Running) { Time = T0, Cause = Admin }, 10));
        j.Add(Pid(uuid), 20, At(new QubeStopped(StopKind.Crashed, hostile) { Time = T0, Cause = Admin }, 20, EventCause.Backend("died")));
        var builder = new ReportBuilder(null, null);
        j.Events.ForEach(builder.Add);
        using var stream = new MemoryStream();
        builder.WriteJson(stream, T0.AddSeconds(30));
        var json = Encoding.UTF8.GetString(stream.ToArray());
        foreach (var c in "<>&\u2028\u2029'")
            Assert.DoesNotContain(c, json);
        var root = JsonDocument.Parse(json).RootElement;
        var lane = Assert.Single(root.GetProperty("lanes").EnumerateArray());
        Assert.Equal(hostile, lane.GetProperty("name").GetString());
        Assert.Equal("#73d216", lane.GetProperty("colour").GetString());
        Assert.Equal([10_000L, 20_000L, (long)PowerState.Running], lane.GetProperty("spans").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal([20_000L, (long)MarkerKind.Crash, 0L], lane.GetProperty("markers").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal("crashed: " + hostile, root.GetProperty("details")[0].GetString());
    }

    [Fact]
    public void Report_window_clips_spans_and_drops_markers_outside_it()
    {
        var (j, _) = Work();
        var builder = new ReportBuilder(T0.AddSeconds(15), T0.AddSeconds(30));
        j.Events.ForEach(builder.Add);
        using var stream = new MemoryStream();
        builder.WriteJson(stream, T0.AddSeconds(100));
        var lane = Assert.Single(JsonDocument.Parse(stream.ToArray()).RootElement.GetProperty("lanes").EnumerateArray());
        // Relative to --since: Running 15-20, Paused 20-25, Running 25-30 (clipped); the crash at 40 is outside.
        Assert.Equal([0L, 5_000, (long)PowerState.Running, 5_000, 10_000, (long)PowerState.Paused, 10_000, 15_000, (long)PowerState.Running],
            lane.GetProperty("spans").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Empty(lane.GetProperty("markers").EnumerateArray());
    }

    [Fact]
    public void Durations_read_like_the_times_they_separate()
    {
        Assert.Equal("0.120s", PowerSpan.FormatDuration(TimeSpan.FromMilliseconds(120)));
        Assert.Equal("2m 03.004s", PowerSpan.FormatDuration(new TimeSpan(0, 0, 2, 3, 4)));
        Assert.Equal("1h 00m 00.000s", PowerSpan.FormatDuration(TimeSpan.FromHours(1)));
        Assert.Equal("2d 03h 00m 00.000s", PowerSpan.FormatDuration(new TimeSpan(2, 3, 0, 0)));
    }
}
