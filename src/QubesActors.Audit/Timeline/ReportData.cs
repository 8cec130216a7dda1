using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using QubesActors.Audit.Journal;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Runtime.Policy;

namespace QubesActors.Audit.Timeline;

/// <summary>What the report marks on a lane.</summary>
public enum MarkerKind
{
    Crash,
    Restart,
    RestartLoop,
    Denial,
}

/// <summary>One lane of the report: a qube name (all its lives), its label colour, its active spans and its markers.</summary>
public sealed class ReportLane(string name)
{
    public string Name { get; } = name;
    public string Label { get; set; } = "gray";
    /// <summary>Flat (start, end, state) triples in ms since the report's origin; only active states (halted is the empty track).</summary>
    public List<long> Spans { get; } = [];
    /// <summary>Flat (time, kind, detail index) triples.</summary>
    public List<long> Markers { get; } = [];
}

/// <summary>
/// Aggregates every event into per-qube lanes for the HTML report: spans and markers only, as numbers plus one table
/// of distinct detail strings, so a million events become a few arrays (never one element per event).
/// </summary>
public sealed partial class ReportBuilder(DateTimeOffset? since, DateTimeOffset? until)
{
    private readonly Dictionary<string, ReportLane> _lanes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (QubeReplay Replay, ReportLane Lane)> _streams = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _labelColours = Label.Standard.ToDictionary(l => l.Name, l => l.Color, StringComparer.Ordinal);
    private readonly Dictionary<string, int> _detailIndex = new(StringComparer.Ordinal);
    private readonly List<string> _details = [];
    private DateTimeOffset? _first;
    private DateTimeOffset? _last;
    private long _events;

    private DateTimeOffset Origin => since ?? _first ?? DateTimeOffset.UnixEpoch;

    public void Add(AuditEvent e)
    {
        _events++;
        _first ??= e.Time;
        _last = e.Time;
        switch (e.Event)
        {
            case LabelCreated l:
                _labelColours[l.Name] = l.Color;
                return;
            case PolicyDecisionRecorded p:
                if (QubeHistoryBuilder.IsDenial(p))
                    Mark(LaneOf(p.Source), e.Time, MarkerKind.Denial,
                        $"denied {p.Service}{p.Argument} -> {(p.RequestedTarget.Length == 0 ? "@default" : p.RequestedTarget)}" +
                        (p.Reason is null ? "" : $" ({p.Reason})") + $" asked by {p.Caller}");
                return;
            case QubeCreated:
            {
                var lane = LaneOf(e.Qube);
                var replay = QubeReplay.Start(e);
                lane.Label = replay.State.Label;
                _streams[e.PersistenceId] = (replay, lane);
                return;
            }
        }
        if (!_streams.TryGetValue(e.PersistenceId, out var stream))
            return;
        var (r, owner) = stream;
        if (r.Apply(e) is { } closed)
            AddSpan(owner, closed);
        owner.Label = r.State.Label;
        switch (e.Event)
        {
            case QubeStopped { Kind: StopKind.Crashed } s:
                Mark(owner, e.Time, MarkerKind.Crash, $"crashed: {s.Reason}");
                break;
            case QubeRestartScheduled rs:
                Mark(owner, e.Time, MarkerKind.Restart, $"restart {rs.Attempt} scheduled in {PowerSpan.FormatDuration(rs.Delay)}");
                break;
            case QubeFailed f:
                Mark(owner, e.Time, MarkerKind.RestartLoop, $"restart limit hit: {f.Reason}");
                break;
        }
    }

    private ReportLane LaneOf(string name)
    {
        if (!_lanes.TryGetValue(name, out var lane))
            _lanes[name] = lane = new ReportLane(name);
        return lane;
    }

    private void AddSpan(ReportLane lane, PowerSpan span)
    {
        if (!span.State.IsActive() || (until is { } u && span.Start > u) || (since is { } s && span.End < s))
            return;
        var start = since is { } from && span.Start < from ? from : span.Start;
        var end = until is { } to && span.End > to ? to : span.End;
        lane.Spans.Add(Ms(start));
        lane.Spans.Add(Ms(end));
        lane.Spans.Add((long)span.State);
    }

    private void Mark(ReportLane lane, DateTimeOffset time, MarkerKind kind, string detail)
    {
        if ((since is { } s && time < s) || (until is { } u && time > u))
            return;
        if (!_detailIndex.TryGetValue(detail, out var index))
        {
            _detailIndex[detail] = index = _details.Count;
            _details.Add(detail);
        }
        lane.Markers.Add(Ms(time));
        lane.Markers.Add((long)kind);
        lane.Markers.Add(index);
    }

    private long Ms(DateTimeOffset t) => (long)(t - Origin).TotalMilliseconds;

    public IReadOnlyCollection<ReportLane> Lanes => _lanes.Values;

    /// <summary>
    /// Writes the data as JSON with System.Text.Json's default encoder, which escapes <c>&lt; &gt; &amp; ' +</c>, every
    /// non-ASCII character (U+2028/2029 included) and every control character: the text cannot end the
    /// <c>&lt;script&gt;</c> element it is embedded in, nor break the JavaScript that parses it.
    /// </summary>
    public void WriteJson(Stream output, DateTimeOffset now)
    {
        // Open spans end now (or at --until).
        var end = until ?? now;
        foreach (var (replay, lane) in _streams.Values)
            if (replay.OpenSpan(end) is { } open)
                AddSpan(lane, open);
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Default });
        w.WriteStartObject();
        w.WriteString("origin", AuditDetails.FormatTime(Origin));
        w.WriteNumber("origin_ms", Origin.ToUnixTimeMilliseconds());
        w.WriteNumber("end_ms", Math.Max(Ms(end), 1));
        w.WriteString("generated", AuditDetails.FormatTime(now));
        w.WriteNumber("events", _events);
        w.WriteStartArray("states");
        foreach (var state in Enum.GetValues<PowerState>())
            w.WriteStringValue(state.Wire());
        w.WriteEndArray();
        w.WriteStartArray("marker_kinds");
        foreach (var kind in Enum.GetValues<MarkerKind>())
            w.WriteStringValue(kind switch { MarkerKind.Crash => "crash", MarkerKind.Restart => "restart", MarkerKind.RestartLoop => "restart-loop", _ => "denial" });
        w.WriteEndArray();
        w.WriteStartArray("details");
        foreach (var d in _details)
            w.WriteStringValue(d);
        w.WriteEndArray();
        w.WriteStartArray("lanes");
        foreach (var lane in _lanes.Values.OrderBy(l => l.Name, StringComparer.Ordinal))
        {
            // Sorted by start: spans of one stream are in order, but lives of one name are closed at different moments.
            var order = Enumerable.Range(0, lane.Spans.Count / 3).OrderBy(i => lane.Spans[3 * i]).ToList();
            w.WriteStartObject();
            w.WriteString("name", lane.Name);
            w.WriteString("label", lane.Label);
            w.WriteString("colour", Colour(lane.Label));
            w.WriteStartArray("spans");
            foreach (var i in order)
                for (var k = 0; k < 3; k++)
                    w.WriteNumberValue(lane.Spans[3 * i + k]);
            w.WriteEndArray();
            w.WriteStartArray("markers");
            foreach (var m in lane.Markers)
                w.WriteNumberValue(m);
            w.WriteEndArray();
            w.WriteEndObject();
            w.Flush();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Qubes label colours are <c>0xRRGGBB</c>; anything else (untrusted: a custom label) is drawn gray.</summary>
    public string Colour(string label) =>
        _labelColours.TryGetValue(label, out var c) && HexColour().IsMatch(c) ? "#" + c[2..].ToLower(CultureInfo.InvariantCulture) : "#555555";

    [GeneratedRegex("^0x[0-9a-fA-F]{6}$")]
    private static partial Regex HexColour();
}
