using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using Xunit;

namespace QubesActors.Core.Tests.Model;

/// <summary>qid, dispid and uuid allocation (§1.1).</summary>
public class IdentityTests
{
    [Fact]
    public void Dom0_has_qid_0_the_null_uuid_and_is_always_running()
    {
        var dom0 = CollectionState.Empty.Get("dom0");
        Assert.Equal(0, dom0.Qid);
        Assert.Equal(Guid.Empty, dom0.Uuid);
        Assert.Equal("00000000-0000-0000-0000-000000000000", CollectionState.Empty.Effective(dom0, "uuid"));
        Assert.Equal(PowerState.Running, dom0.Power);
        Assert.Equal(QubeClass.AdminVM, dom0.Class);
    }

    [Fact]
    public void New_qubes_get_consecutive_qids_from_one()
    {
        var w = new TestWorld()
            .Create(QubeClass.TemplateVM, "t1")
            .Create(QubeClass.TemplateVM, "t2")
            .Create(QubeClass.AppVM, "a", "red", "t1");
        Assert.Equal([1, 2, 3], new[] { "t1", "t2", "a" }.Select(n => w[n].Qid));
        Assert.Equal("3", w.Effective("a", "qid"));
    }

    [Fact]
    public void The_lowest_free_qid_is_reused_after_a_removal()
    {
        var w = new TestWorld()
            .Create(QubeClass.StandaloneVM, "a")
            .Create(QubeClass.StandaloneVM, "b")
            .Create(QubeClass.StandaloneVM, "c")
            .Remove("b")
            .Remove("a");
        Assert.Equal(1, w.State.NextQid());
        w.Create(QubeClass.StandaloneVM, "d").Create(QubeClass.StandaloneVM, "e").Create(QubeClass.StandaloneVM, "f");
        Assert.Equal((1, 2, 4), (w["d"].Qid, w["e"].Qid, w["f"].Qid));
    }

    [Fact]
    public void Qids_run_out_after_9999()
    {
        var c = CollectionState.Empty;
        for (var qid = 1; qid <= 9998; qid++)
            c = c.WithQube(new QubeState { Uuid = Guid.NewGuid(), Name = $"q{qid}", Class = QubeClass.StandaloneVM, Qid = qid, Label = "red" });
        Assert.Equal(9999, c.NextQid());
        c = c.WithQube(new QubeState { Uuid = Guid.NewGuid(), Name = "last", Class = QubeClass.StandaloneVM, Qid = 9999, Label = "red" });
        Assert.Throws<QubesError>(() => c.NextQid());
    }

    [Fact]
    public void The_uuid_given_at_creation_is_kept()
    {
        var uuid = Guid.Parse("6e9c1cd0-6b24-4e8e-9ad3-9d0b1bb9b1b1");
        var e = QubesActors.Core.Rules.CollectionRules.CreateQube(CollectionState.Empty, QubeClass.StandaloneVM, "a", "red", null,
            new Dictionary<string, string>(), TestWorld.Dom0, TestWorld.T0, uuid);
        var c = CollectionState.Empty.Apply("a", e);
        Assert.Equal(uuid, c.Get("a").Uuid);
        Assert.Equal("6e9c1cd0-6b24-4e8e-9ad3-9d0b1bb9b1b1", c.Effective(c.Get("a"), "uuid"));
    }

    [Fact]
    public void Dispid_is_write_once_and_only_a_DispVM_property()
    {
        var w = TestWorld.Installed();
        var disp = w.CreateDisposable("default-dvm", dispId: 1234);
        Assert.Equal("disp1234", disp);
        Assert.Equal("1234", w.Effective(disp, "dispid"));
        Assert.Throws<QubesValueError>(() => w.Set(disp, "dispid", "7"));
        var e = Assert.Throws<QubesNoSuchPropertyError>(() => w.Set("work", "dispid", "7"));
        Assert.Equal("Invalid property 'dispid' of work", e.Message);
        Assert.Null(w.Effective("work", "dispid"));
    }

    [Fact]
    public void NextDispId_takes_the_random_choice_when_it_is_free()
    {
        var bounds = new List<int>();
        var id = CollectionState.Empty.NextDispId(max => { bounds.Add(max); return 4321; }, TestWorld.T0);
        Assert.Equal(4321, id);
        Assert.Equal([10000], bounds);
    }

    [Fact]
    public void NextDispId_never_returns_the_dispid_of_an_existing_disposable()
    {
        var w = TestWorld.Installed();
        w.CreateDisposable("default-dvm", dispId: 7);
        var draws = new Queue<int>([7, 7, 8]);
        Assert.Equal(8, w.State.NextDispId(_ => draws.Dequeue(), w.Now));
    }

    [Fact]
    public void A_dispid_is_not_reused_for_seven_days_after_its_disposable_is_removed()
    {
        var w = TestWorld.Installed();
        var disp = w.CreateDisposable("default-dvm", dispId: 7);
        w.Remove(disp);
        Assert.Null(w.State.Find(disp));
        Assert.Equal(w.Now, w.State.RecentDispIds[7]);

        Assert.Equal(8, w.State.NextDispId(Alternating(7, 8), w.Now));
        Assert.Equal(8, w.State.NextDispId(Alternating(7, 8), w.Now + TimeSpan.FromDays(7) - TimeSpan.FromSeconds(1)));
        Assert.Equal(7, w.State.NextDispId(Alternating(7, 8), w.Now + TimeSpan.FromDays(7)));
    }

    [Fact]
    public void NextDispId_skips_ids_whose_disp_name_is_taken_by_a_named_qube()
    {
        var w = new TestWorld().Create(QubeClass.StandaloneVM, "disp5");
        Assert.Equal(6, w.State.NextDispId(Alternating(5, 6), w.Now));
    }

    [Fact]
    public void NextDispId_falls_back_to_a_scan_when_the_random_source_keeps_hitting_used_ids()
    {
        var w = TestWorld.Installed();
        w.CreateDisposable("default-dvm", dispId: 0);
        Assert.Equal(1, w.State.NextDispId(_ => 0, w.Now));
    }

    private static Func<int, int> Alternating(int first, int second)
    {
        var n = 0;
        return _ => n++ % 2 == 0 ? first : second;
    }

    [Fact]
    public void A_disposable_is_named_after_its_dispid_and_addressed_in_10_138()
    {
        var w = TestWorld.Installed();
        var disp = w.CreateDisposable("default-dvm", dispId: 300);
        Assert.Equal("disp300", disp);
        // Upstream's vmid_to_ipv4: ids from 255 on skip the .0 and .255 host parts: 299 / 254 = 1, 299 % 254 + 1 = 46.
        Assert.Equal("10.138.1.46", w.Effective(disp, "ip"));
    }

    [Theory]
    [InlineData(1, "10.137.0.1")]
    [InlineData(254, "10.137.0.254")]
    [InlineData(255, "10.137.1.1")]
    [InlineData(508, "10.137.1.254")]
    [InlineData(509, "10.137.2.1")]
    [InlineData(2638, "10.137.10.98")]
    [InlineData(9999, "10.137.39.93")]
    public void Addresses_follow_upstreams_vmid_mapping(int id, string ip) => Assert.Equal(ip, Addressing.VmIdToIpv4("10.137", id));

    [Fact]
    public void A_network_provider_without_netvm_is_networked_and_has_an_address()
    {
        var w = TestWorld.Installed();
        Assert.Null(w.Effective("sys-net", "netvm"));
        Assert.Equal($"10.137.0.{w["sys-net"].Qid}", w.Effective("sys-net", "ip"));
        Assert.Equal("10.139.1.1 10.139.1.2", w.Effective("sys-net", "dns"));
    }

    [Fact]
    public void A_connected_qube_is_addressed_from_its_qid_in_10_137()
    {
        var w = TestWorld.Installed();
        var qid = w["work"].Qid;
        Assert.Equal($"10.137.0.{qid}", w.Effective("work", "ip"));
        Assert.Equal($"10.137.0.{qid}", w.Effective("work", "visible_ip"));
        Assert.Equal("10.139.1.1 10.139.1.2", w.Effective("work", "dns"));
        Assert.Null(w.Effective("work", "gateway"));
        Assert.Equal($"10.137.0.{w["sys-firewall"].Qid}", w.Effective("sys-firewall", "gateway"));
        w.Set("work", "netvm", "");
        Assert.Null(w.Effective("work", "ip"));
        Assert.Null(w.Effective("work", "dns"));
    }
}

[Properties(MaxTest = 200)]
public class DispIdPropertyTests
{
    [Property]
    public Property NextDispId_is_in_range_and_never_in_use_nor_recently_freed() =>
        Prop.ForAll(
            Gen.Choose(0, 9999).ListOf().Select(l => l.Distinct().Take(40).ToArray()).ToArbitrary(),
            Gen.Choose(0, 9999).ListOf().Select(l => l.ToArray()).ToArbitrary(),
            Gen.Choose(0, 14 * 24).ToArbitrary(),
            (used, draws, ageHours) =>
            {
                var now = TestWorld.T0;
                var c = CollectionState.Empty;
                foreach (var id in used.Take(used.Length / 2))
                    c = c.WithQube(new QubeState { Uuid = Guid.NewGuid(), Name = $"disp{id}", Class = QubeClass.DispVM, Qid = c.NextQid(), DispId = id, Label = "red" });
                var freedAt = now - TimeSpan.FromHours(ageHours);
                foreach (var id in used.Skip(used.Length / 2))
                    c = c with { RecentDispIds = c.RecentDispIds.SetItem(id, freedAt) };
                var i = 0;
                var next = c.NextDispId(max => draws.Length == 0 ? 0 : draws[i++ % draws.Length] % max, now);
                var inUse = used.Take(used.Length / 2).Contains(next);
                var recent = used.Skip(used.Length / 2).Contains(next) && ageHours < 7 * 24;
                return next is >= 0 and < 10000 && !inUse && !recent;
            });
}
