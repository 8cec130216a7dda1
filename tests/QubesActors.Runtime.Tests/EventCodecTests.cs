using System.Collections;
using System.Reflection;
using System.Text;
using QubesActors.Core.Events;
using QubesActors.Runtime.Persistence;
using Xunit;

namespace QubesActors.Runtime.Tests;

/// <summary>
/// Replay of every event type: an encode/decode round trip, and an old payload fixed here as a literal, which must still
/// decode to the same event and encode to the same bytes (a change of shape breaks this test: give it a new .vN).
/// </summary>
public sealed class EventCodecTests
{
    public static TheoryData<string> Manifests()
    {
        var data = new TheoryData<string>();
        foreach (var type in EventCodec.EventTypes.OrderBy(t => t.Name, StringComparer.Ordinal))
            data.Add(type.Name);
        return data;
    }

    private static DomainEvent Sample(string typeName)
    {
        var type = EventCodec.EventTypes.Single(t => t.Name == typeName);
        Assert.True(EventSamples.All.TryGetValue(type, out var sample), $"no sample for {typeName}: add one to EventSamples");
        return sample!;
    }

    [Fact]
    public void Every_event_type_has_a_sample_and_an_old_payload()
    {
        Assert.Equal(EventCodec.EventTypes.OrderBy(t => t.Name), EventSamples.All.Keys.OrderBy(t => t.Name));
        Assert.Equal(EventCodec.EventTypes.Select(ManifestOfType).Order(StringComparer.Ordinal),
            OldPayloads.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Round_trip_gives_an_equal_event(string typeName)
    {
        var e = Sample(typeName);
        var manifest = EventCodec.ManifestOf(e);
        var decoded = EventCodec.Decode(EventCodec.Encode(e), manifest);
        Assert.IsType(e.GetType(), decoded);
        AssertDeepEqual(e, decoded);
        Assert.Equal(EventCodec.Encode(e), EventCodec.Encode(decoded));
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void An_old_payload_still_decodes_to_the_same_event(string typeName)
    {
        var e = Sample(typeName);
        var manifest = EventCodec.ManifestOf(e);
        Assert.True(OldPayloads.TryGetValue(manifest, out var old), $"no old payload for {manifest}");
        var decoded = EventCodec.Decode(Encoding.UTF8.GetBytes(old!), manifest);
        AssertDeepEqual(e, decoded);
        Assert.Equal(old, Encoding.UTF8.GetString(EventCodec.Encode(e)));
    }

    [Fact]
    public void Manifests_are_versioned_and_unique()
    {
        var manifests = EventCodec.EventTypes.Select(ManifestOfType).ToList();
        Assert.Equal(manifests.Count, manifests.Distinct().Count());
        Assert.All(manifests, m => Assert.Matches(@"^(qube|collection|policy|journal)\.[a-z-]+\.v\d+$", m));
    }

    [Fact]
    public void An_unknown_manifest_is_refused() =>
        Assert.Throws<System.Text.Json.JsonException>(() => EventCodec.Decode("{}"u8, "qube.teleported.v1"));

    private static string ManifestOfType(Type type) => EventCodec.ManifestOf(EventSamples.All[type]);

    /// <summary>Compares public properties, collections element by element (records hold immutable collections).</summary>
    private static void AssertDeepEqual(object? expected, object? actual, string path = "event")
    {
        if (expected is null || actual is null)
        {
            Assert.True(expected is null && actual is null, $"{path}: {expected} vs {actual}");
            return;
        }
        var type = expected.GetType();
        Assert.Equal(type, actual.GetType());
        if (expected is string || type.IsPrimitive || type.IsEnum || expected is DateTimeOffset or TimeSpan or Guid or decimal)
        {
            Assert.True(expected.Equals(actual), $"{path}: {expected} vs {actual}");
            return;
        }
        if (expected is IEnumerable left && actual is IEnumerable right)
        {
            var l = left.Cast<object?>().ToList();
            var r = right.Cast<object?>().ToList();
            Assert.True(l.Count == r.Count, $"{path}: {l.Count} vs {r.Count} elements");
            for (var i = 0; i < l.Count; i++)
                AssertDeepEqual(l[i], r[i], $"{path}[{i}]");
            return;
        }
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0 && p.Name != "EqualityContract"))
            AssertDeepEqual(p.GetValue(expected), p.GetValue(actual), $"{path}.{p.Name}");
    }

    /// <summary>Payloads as stored, fixed here on purpose. Never edit one to make a test pass: add a new manifest.</summary>
    private static readonly Dictionary<string, string> OldPayloads = new()
    {
        ["collection.global-property-reset.v1"] = """
            {"property":"default_netvm","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["collection.global-property-set.v1"] = """
            {"property":"default_netvm","value":"sys-firewall","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["collection.label-created.v1"] = """
            {"index":9,"name":"teal","color":"0x008080","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["collection.label-removed.v1"] = """
            {"name":"teal","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["journal.sealed.v1"] = """
            {"from_ordering":120,"to_ordering":250,"rows":128,"digest":"aa1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0","heads":[{"persistence_id":"qube-6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0","sequence_nr":17,"hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}],"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["policy.decided.v1"] = """
            {"service":"qubes.Filecopy","argument":"\u002B","source":"work","requested_target":"personal","normalized_target":"personal","target":"personal","result":"allow","evaluated":"Ask","file":"/etc/qubes/policy.d/90-default.policy","line":6,"caller":"policy-socket (uid=0 pid=42)","log_line":"qrexec: qubes.Filecopy\u002B: work -\u003E personal: allowed to personal","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.adopted.v1"] = """
            {"state":"Paused","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.created.v1"] = """
            {"uuid":"6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0","name":"work","class":"AppVM","qid":7,"label":"blue","properties":{"netvm":"sys-firewall","template":"fedora"},"tags":["audited","created-by-dom0"],"features":{"service.cups":"1"},"firewall":["action=accept dsthost=example.com","action=drop"],"disp_id":42,"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.device-assigned.v1"] = """
            {"device_class":"usb","device":"sys-usb:2-1","mode":"auto-attach","options":{"_readonly":"yes","frontend-domain":"work"},"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.device-assignment-changed.v1"] = """
            {"device_class":"usb","device":"sys-usb:2-1","mode":"required","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.device-attached.v1"] = """
            {"device_class":"block","device":"sys-usb:sda","options":{"_readonly":"yes","frontend-domain":"work"},"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.device-detached.v1"] = """
            {"device_class":"block","device":"sys-usb:sda","reason":"backend sys-usb stopped","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.device-unassigned.v1"] = """
            {"device_class":"usb","device":"sys-usb:2-1","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.failed-reset.v1"] = """
            {"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.failed.v1"] = """
            {"reason":"start limit hit: 6 unexpected stops within 60s (intensity 5)","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.feature-removed.v1"] = """
            {"feature":"service.cups","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.feature-set.v1"] = """
            {"feature":"service.cups","value":"1","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.firewall-set.v1"] = """
            {"rules":["action=accept proto=tcp dstports=443-443","action=drop"],"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.network-attached.v1"] = """
            {"net_vm":"sys-firewall","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.network-detached.v1"] = """
            {"net_vm":"sys-firewall","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.notes-set.v1"] = """
            {"notes":"quarterly reports","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.paused.v1"] = """
            {"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.property-reset.v1"] = """
            {"property":"memory","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.property-set.v1"] = """
            {"property":"memory","value":"800","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.removed.v1"] = """
            {"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.restart-scheduled.v1"] = """
            {"attempt":3,"delay":"00:00:04.2500000","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.resumed.v1"] = """
            {"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.shutting-down.v1"] = """
            {"force":true,"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.start-failed.v1"] = """
            {"reason":"Start failed: no memory","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.started.v1"] = """
            {"state":"Running","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.starting.v1"] = """
            {"net_vm":"sys-firewall","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.stopped.v1"] = """
            {"kind":"Crashed","reason":"simulated crash","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.suspended.v1"] = """
            {"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.tag-added.v1"] = """
            {"tag":"audited","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.tag-removed.v1"] = """
            {"tag":"audited","time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
        ["qube.unpaused.v1"] = """
            {"time":"2026-01-02T03:04:05.678+00:00","cause":{"kind":"admin","caller":"dom0","detail":"admin.vm.Start"},"prev_hash":"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}
            """,
    };
}
