using SocketStarter.GatewayWorker.Shards;

namespace SocketStarter.Tests.Shards;

/// <summary>
/// The split each worker computes from its peers' heartbeats: rounds of every worker acting on what
/// it last heard (as the heartbeats carry it) until nothing changes.
/// </summary>
public sealed class Planning_the_shards
{
    private const int Shards = 16;

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(5)]
    [TestCase(16)]
    [TestCase(20)]
    public void Workers_starting_together_end_with_disjoint_fair_shares_covering_every_shard(int workers)
    {
        var held = Simulate(Enumerable.Range(0, workers).Select(i => $"w{i:00}").ToDictionary(w => w, _ => new HashSet<int>()));
        AssertFair(held);
    }

    [Test]
    public void A_worker_that_joins_gets_its_share_and_only_surplus_shards_move()
    {
        var held = Simulate(new() { ["a"] = [], ["b"] = [] });
        var before = held.ToDictionary(h => h.Key, h => h.Value.ToHashSet());
        held["c"] = [];
        held = Simulate(held);
        AssertFair(held);
        var moved = before.Sum(b => b.Value.Except(held[b.Key]).Count());
        Assert.That(moved, Is.EqualTo(held["c"].Count), "only what the newcomer took moved");
    }

    [Test]
    public void The_shards_of_a_worker_that_is_gone_are_taken_by_the_others()
    {
        var held = Simulate(new() { ["a"] = [], ["b"] = [], ["c"] = [] });
        held.Remove("b");
        AssertFair(Simulate(held));
    }

    [Test]
    public void A_shard_held_twice_after_views_differed_stays_with_the_lower_id()
    {
        var plan = ShardPlan.For("b", new HashSet<int> { 3, 4 }, [Beat("a", [3])], Shards, stopping: false);
        Assert.That(plan.Release, Does.Contain(3).And.Not.Contain(4));
    }

    [Test]
    public void A_stopping_worker_keeps_its_shards_until_it_says_it_let_them_go()
    {
        var peers = new[] { Beat("a", [0, 1, 2, 3, 4, 5, 6, 7], stopping: true) };
        var plan = ShardPlan.For("b", new HashSet<int> { 8, 9, 10, 11, 12, 13, 14, 15 }, peers, Shards, stopping: false);
        Assert.Multiple(() =>
        {
            Assert.That(plan.Take, Is.Empty, "not while it still lists them");
            Assert.That(plan.Release, Is.Empty, "the stopping one does not count among the live: b's share is all 16");
        });
        var after = ShardPlan.For("b", new HashSet<int> { 8, 9, 10, 11, 12, 13, 14, 15 }, [Beat("a", [], stopping: true)], Shards, stopping: false);
        Assert.That(after.Take, Is.EquivalentTo(Enumerable.Range(0, 8)));
    }

    private static WorkerHeartbeat Beat(string id, int[] shards, bool stopping = false) =>
        new() { WorkerId = id, Shards = shards, Stopping = stopping, SentAt = DateTimeOffset.UnixEpoch };

    /// <summary>Rounds of every worker acting on the others' last heartbeats, until a round changes nothing.</summary>
    private static Dictionary<string, HashSet<int>> Simulate(Dictionary<string, HashSet<int>> held)
    {
        for (var round = 0; round < 50; round++)
        {
            var beats = held.Select(h => Beat(h.Key, [.. h.Value])).ToList();
            var changed = false;
            foreach (var (worker, shards) in held)
            {
                var plan = ShardPlan.For(worker, shards, beats.Where(b => b.WorkerId != worker).ToList(), Shards, stopping: false);
                shards.ExceptWith(plan.Release);
                shards.UnionWith(plan.Take);
                changed |= plan.Release.Count + plan.Take.Count > 0;
            }
            if (!changed)
                return held;
        }
        Assert.Fail("the shards never settled");
        return held;
    }

    private static void AssertFair(Dictionary<string, HashSet<int>> held)
    {
        var all = held.Values.SelectMany(s => s).ToList();
        var counts = held.Values.Select(s => s.Count).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(all, Is.Unique, "disjoint");
            Assert.That(all, Is.EquivalentTo(Enumerable.Range(0, Shards)), "every shard held");
            Assert.That(counts.Max() - counts.Min(), Is.LessThanOrEqualTo(1), "fair shares");
        });
    }
}
