using System.Text;

namespace QubesActors.Audit.Timeline;

/// <summary>
/// The self-contained report page: inline CSS and JS, no fetch, no external resource. The data sits in a
/// <c>&lt;script type="application/json"&gt;</c> element (escaped by <see cref="ReportBuilder.WriteJson"/>); the script
/// puts journal text into the page only through <c>textContent</c> and <c>title</c>, never as markup.
/// </summary>
public static class ReportHtml
{
    public static void Write(Stream output, ReportBuilder data, DateTimeOffset now)
    {
        output.Write(Encoding.UTF8.GetBytes(Head));
        data.WriteJson(output, now);
        output.Write(Encoding.UTF8.GetBytes(Tail));
        output.Flush();
    }

    private const string Head = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
        <title>qubes-audit report</title>
        <style>
        body { font: 13px/1.4 system-ui, sans-serif; margin: 12px; color: #222; background: #fafafa; }
        h1 { font-size: 16px; margin: 0 0 6px; }
        #controls { margin: 6px 0 10px; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
        #controls input { font: 12px monospace; width: 17em; }
        #errors { color: #b00; }
        #errors:empty { display: none; }
        .lane { display: flex; align-items: center; height: 18px; border-bottom: 1px solid #eee; }
        .lane-name { width: 180px; flex: none; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; font: 12px monospace; padding-right: 6px; }
        .track { position: relative; flex: 1; height: 14px; background: #f0f0f0; }
        .span { position: absolute; top: 2px; height: 10px; min-width: 1px; }
        .marker { position: absolute; top: 0; width: 0; height: 0; border-left: 5px solid transparent; border-right: 5px solid transparent; margin-left: -5px; cursor: help; }
        .marker.crash { border-top: 14px solid #d00; }
        .marker.restart-loop { border-top: 14px solid #000; }
        .marker.denial { border-bottom: 10px solid #e67e00; }
        .marker.restart { border-top: 8px solid #06c; }
        #axis { position: relative; height: 16px; margin-left: 180px; font: 11px monospace; color: #666; }
        #axis span { position: absolute; white-space: nowrap; }
        .legend span { margin-right: 12px; }
        </style>
        </head>
        <body>
        <h1>qubes-audit report</h1>
        <ul id="errors"></ul>
        <script>
        // Before everything else: any script error is shown on the page (and read by the test through the DOM).
        window.onerror = function (message, source, line, column) {
          var item = document.createElement('li');
          item.textContent = 'script error: ' + message + ' (' + line + ':' + column + ')';
          document.getElementById('errors').appendChild(item);
          document.body.setAttribute('data-script-errors', String(document.getElementById('errors').children.length));
        };
        </script>
        <div id="summary"></div>
        <div id="controls">
          <label>from <input id="from" type="text" spellcheck="false"></label>
          <label>to <input id="to" type="text" spellcheck="false"></label>
          <button id="apply" type="button">apply</button>
          <button id="reset" type="button">whole range</button>
          <span class="legend"><span>&#9660; red: crash</span><span>&#9660; black: restart limit (loop)</span><span>&#9660; blue: restart</span><span>&#9650; orange: denied request</span><span>bar: running (pale: paused, suspended, in transition)</span></span>
        </div>
        <div id="status" data-state="loading">loading</div>
        <div id="axis"></div>
        <div id="lanes"></div>
        <script type="application/json" id="audit-data">
        """;

    private const string Tail = """
        </script>
        <script>
        (function () {
          'use strict';
          var data = JSON.parse(document.getElementById('audit-data').textContent);
          var statusEl = document.getElementById('status');
          var lanesEl = document.getElementById('lanes');
          var axisEl = document.getElementById('axis');
          var fromEl = document.getElementById('from');
          var toEl = document.getElementById('to');
          var BINS = 1200; // merge what is closer than 1/1200 of the width: the DOM size does not grow with the events
          var opacity = { Running: 1, Paused: 0.45, Suspended: 0.35, Transient: 0.6, Halting: 0.6 };

          function iso(ms) { return new Date(data.origin_ms + ms).toISOString(); }
          function duration(ms) {
            var s = Math.floor(ms / 1000), out = (ms % 1000 / 1000 + s % 60).toFixed(3) + 's';
            if (s >= 60) out = Math.floor(s / 60) % 60 + 'm ' + out;
            if (s >= 3600) out = Math.floor(s / 3600) % 24 + 'h ' + out;
            if (s >= 86400) out = Math.floor(s / 86400) + 'd ' + out;
            return out;
          }
          function el(tag, cls, text) {
            var e = document.createElement(tag);
            if (cls) e.className = cls;
            if (text !== undefined) e.textContent = text;
            return e;
          }
          // First span (triple index) whose end is after t: spans are sorted and do not overlap within a life.
          function firstEndingAfter(spans, t) {
            var lo = 0, hi = spans.length / 3;
            while (lo < hi) { var mid = (lo + hi) >> 1; if (spans[3 * mid + 1] <= t) lo = mid + 1; else hi = mid; }
            return lo;
          }

          function render(from, to) {
            lanesEl.textContent = '';
            axisEl.textContent = '';
            var width = Math.max(1, to - from), scale = BINS / width, blocks = 0, markers = 0;
            for (var k = 0; k <= 4; k++) {
              var tick = el('span', '', iso(from + width * k / 4).replace('T', ' ').replace('Z', ''));
              tick.style.left = (k * 25) + '%';
              if (k === 4) { tick.style.left = ''; tick.style.right = '0'; }
              else if (k > 0) tick.style.transform = 'translateX(-50%)';
              axisEl.appendChild(tick);
            }
            var fragment = document.createDocumentFragment();
            data.lanes.forEach(function (lane) {
              var row = el('div', 'lane');
              var name = el('div', 'lane-name', lane.name);
              name.title = lane.name + ' (label ' + lane.label + ')';
              var track = el('div', 'track');
              row.appendChild(name);
              row.appendChild(track);
              var spans = lane.spans, block = null;
              function flush() {
                if (!block) return;
                var best = null;
                for (var s in block.time) if (best === null || block.time[s] > block.time[best]) best = s;
                var div = el('div', 'span');
                div.style.left = (block.x0 / BINS * 100) + '%';
                div.style.width = (Math.max(block.x1 - block.x0, 0.5) / BINS * 100) + '%';
                div.style.background = lane.colour;
                div.style.opacity = String(opacity[best] || 1);
                var parts = [];
                for (var st in block.time) parts.push(st + ' ' + duration(block.time[st]));
                div.title = lane.name + ': ' + (block.n === 1 ? best : block.n + ' spans, ' + parts.join(', ')) +
                  '\n' + iso(block.start) + ' to ' + iso(block.end) + (block.n === 1 ? ' (' + duration(block.end - block.start) + ')' : '');
                track.appendChild(div);
                blocks++;
                block = null;
              }
              for (var i = firstEndingAfter(spans, from); i < spans.length / 3; i++) {
                var a = Math.max(spans[3 * i], from), b = Math.min(spans[3 * i + 1], to), state = data.states[spans[3 * i + 2]];
                if (spans[3 * i] >= to) break;
                if (b <= a) continue;
                var x0 = (a - from) * scale, x1 = (b - from) * scale;
                if (block && x0 - block.x1 < 1) {
                  block.x1 = Math.max(block.x1, x1); block.end = Math.max(block.end, b); block.n++;
                } else {
                  flush();
                  block = { x0: x0, x1: x1, start: a, end: b, n: 1, time: {} };
                }
                block.time[state] = (block.time[state] || 0) + (b - a);
              }
              flush();
              // Markers closer than 4 bins share one element; its title lists them (the first ten) with their count.
              var m = lane.markers, group = null;
              function flushMarker() {
                if (!group) return;
                var kind = group.kinds['restart-loop'] ? 'restart-loop' : group.kinds.crash ? 'crash' : group.kinds.denial ? 'denial' : 'restart';
                var div = el('div', 'marker ' + kind);
                div.style.left = (group.x / BINS * 100) + '%';
                var counts = [];
                for (var k2 in group.kinds) counts.push(group.kinds[k2] + ' ' + k2);
                div.title = lane.name + ': ' + counts.join(', ') + '\n' + group.lines.join('\n') + (group.n > group.lines.length ? '\n...' : '');
                div.setAttribute('data-kind', kind);
                track.appendChild(div);
                markers++;
                group = null;
              }
              for (var j = 0; j < m.length; j += 3) {
                if (m[j] < from || m[j] > to) continue;
                var x = (m[j] - from) * scale, kindName = data.marker_kinds[m[j + 1]];
                if (!group || x - group.x >= 4) { flushMarker(); group = { x: x, n: 0, kinds: {}, lines: [] }; }
                group.n++;
                group.kinds[kindName] = (group.kinds[kindName] || 0) + 1;
                if (group.lines.length < 10) group.lines.push(iso(m[j]) + ' ' + kindName + ': ' + data.details[m[j + 2]]);
              }
              flushMarker();
              fragment.appendChild(row);
            });
            lanesEl.appendChild(fragment);
            statusEl.textContent = data.lanes.length + ' lanes, ' + blocks + ' span blocks, ' + markers + ' markers; ' +
              iso(from) + ' to ' + iso(to) + ' (' + data.events + ' events read)';
            statusEl.setAttribute('data-state', 'rendered');
            statusEl.setAttribute('data-lanes', String(data.lanes.length));
            statusEl.setAttribute('data-blocks', String(blocks));
            statusEl.setAttribute('data-markers', String(markers));
          }

          function parse(input, fallback) {
            var text = input.value.trim();
            if (text === '') return fallback;
            var t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + 'Z');
            return isNaN(t) ? null : t - data.origin_ms;
          }
          function apply() {
            var from = parse(fromEl, 0), to = parse(toEl, data.end_ms);
            if (from === null || to === null || to <= from) {
              statusEl.textContent = 'not a time range (ISO-8601, UTC unless an offset is given; from before to)';
              statusEl.setAttribute('data-state', 'bad-range');
              return;
            }
            render(from, to);
          }
          function reset() {
            fromEl.value = iso(0);
            toEl.value = iso(data.end_ms);
            render(0, data.end_ms);
          }
          document.getElementById('summary').textContent = 'journal from ' + data.origin + ', report generated ' + data.generated + ', ' + data.lanes.length + ' qubes';
          document.getElementById('apply').addEventListener('click', apply);
          document.getElementById('reset').addEventListener('click', reset);
          fromEl.addEventListener('keydown', function (e) { if (e.key === 'Enter') apply(); });
          toEl.addEventListener('keydown', function (e) { if (e.key === 'Enter') apply(); });
          reset();
          // A range in the address (report.html#from=...&to=...) is applied on load, so a view can be linked.
          var hash = new URLSearchParams(location.hash.slice(1));
          if (hash.has('from') || hash.has('to')) {
            fromEl.value = hash.get('from') || fromEl.value;
            toEl.value = hash.get('to') || toEl.value;
            apply();
          }
        })();
        </script>
        </body>
        </html>

        """;
}
