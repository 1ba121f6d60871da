namespace SocketStarter.GatewayWorker.Shards;

/// <summary>
/// What one worker does with the shards, given what it holds and what its peers said: every
/// worker computes this from the same heartbeats and comes to the same split, so the shards end up
/// disjoint and each worker's count within one of every other's.
/// </summary>
public sealed record ShardPlan(IReadOnlyList<int> Release, IReadOnlyList<int> Take)
{
    /// <param name="peers">The other workers heard from within Worker:PeerTimeout, stopping ones included (they still hold theirs until they say otherwise).</param>
    public static ShardPlan For(string me, IReadOnlySet<int> held, IReadOnlyCollection<WorkerHeartbeat> peers, int shards, bool stopping)
    {
        // A stopping worker hands everything over in one go (ShardBalancer.StopAsync).
        if (stopping)
            return new([], []);

        // The live workers in one order that every worker sees alike; shares are the shard count
        // split evenly, the first ones in that order getting one more.
        var live = peers.Where(p => !p.Stopping).Select(p => p.WorkerId).Append(me).Distinct().Order(StringComparer.Ordinal).ToList();
        int Share(string id)
        {
            var index = live.IndexOf(id);
            return shards / live.Count + (index < shards % live.Count ? 1 : 0);
        }

        var holders = new Dictionary<int, List<string>>();
        foreach (var peer in peers)
        {
            foreach (var shard in peer.Shards)
            {
                if (!holders.TryGetValue(shard, out var list))
                    holders[shard] = list = [];
                list.Add(peer.WorkerId);
            }
        }

        // Two holders of one shard (views differed for a moment): the lower id keeps it. Only one
        // of them is active meanwhile (single active consumer); the other was waiting in line.
        var release = held.Where(s => holders.TryGetValue(s, out var others) && others.Any(o => string.CompareOrdinal(o, me) < 0)).ToList();
        var keep = held.Except(release).Order().ToList();
        var share = Share(me);
        if (keep.Count > share)
        {
            release.AddRange(keep.Skip(share));
            keep = keep.Take(share).ToList();
        }

        var take = new List<int>();
        if (keep.Count < share)
        {
            // Free: held by nobody alive. Shared out among the workers below their share, in the
            // common order, so that workers with the same view take different ones.
            var free = Enumerable.Range(0, shards).Where(s => !held.Contains(s) && !holders.ContainsKey(s)).ToList();
            var next = 0;
            foreach (var id in live)
            {
                var has = id == me ? keep.Count : Math.Min(peers.First(p => p.WorkerId == id).Shards.Count, Share(id));
                var missing = Math.Max(0, Share(id) - has);
                if (id == me)
                    take.AddRange(free.Skip(next).Take(missing));
                next += missing;
            }
        }
        return new(release.Order().ToList(), take);
    }
}
