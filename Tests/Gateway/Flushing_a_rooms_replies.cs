using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// A room's replies leave through the room's ordered flush, one flush at a time under the room's
/// lock. The test takes that lock itself, so that the flushes of several committed messages queue
/// behind it; once it lets go, the first flush sends every message, and the others find theirs
/// sent and let the lock go at once instead of taking their turn at it.
/// </summary>
public sealed class Flushing_a_rooms_replies
{
    [Test]
    public async Task Flushes_queued_behind_the_rooms_lock_find_their_messages_sent_by_the_first_and_send_nothing()
    {
        const int Talkers = 3;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // A process of its own, so that its metrics are its alone.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);

        var talkers = new List<ChatClient>();
        for (var i = 0; i < Talkers; i++)
            talkers.Add(await system.ConnectAsAsync(hub, $"Talker{i}", "busy"));
        var before = await MetricsAsync(worker);

        await using var database = await system.OpenDatabaseAsync();
        await using (var take = new Npgsql.NpgsqlCommand("SELECT pg_advisory_lock(hashtextextended('group:room:busy', 0))", database))
            await take.ExecuteNonQueryAsync();
        for (var i = 0; i < Talkers; i++)
            await talkers[i].SendAsync("say", new { room = "busy", text = $"m{i}" });
        // Each message committed, then its flush asked for the room's lock: three wait behind the test.
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= Talkers, "the three messages' flushes wait for the room's lock");
        Assert.That(talkers.SelectMany(t => t.Messages("busy")), Is.Empty, "nothing of the room leaves while its lock is held");
        await using (var release = new Npgsql.NpgsqlCommand("SELECT pg_advisory_unlock(hashtextextended('group:room:busy', 0))", database))
            Assert.That(await release.ExecuteScalarAsync(), Is.True);

        await Wait.UntilAsync(() => talkers.All(t => t.Messages("busy").Count == Talkers), "every talker heard the three messages");
        var after = "";
        await Wait.UntilAsync(async () => Flushes(after = await MetricsAsync(worker)) - Flushes(before) >= Talkers, "the worker counted the three flushes");
        Assert.Multiple(() =>
        {
            foreach (var talker in talkers)
            {
                var seqs = talker.Messages("busy").Select(m => m.Seq).ToList();
                Assert.That(seqs, Is.Ordered.Ascending.And.Unique, "in the room's order, each once");
                Assert.That(talker.Messages("busy").Select(m => m.Text), Is.EquivalentTo(new[] { "m0", "m1", "m2" }));
            }
            // The first flush to get the lock found all three committed and sent them; the two after it
            // found their rows gone.
            Assert.That(Sample(after, "sent") - Sample(before, "sent"), Is.EqualTo(1), "flushes that sent");
            Assert.That(Sample(after, "already_sent") - Sample(before, "already_sent"), Is.EqualTo(Talkers - 1), "flushes that found their messages sent");
        });
    }

    [Test]
    public async Task A_join_whose_room_replies_an_earlier_flush_sent_still_sends_its_own_snapshot()
    {
        // A join writes replies of the room (its member list's change, its place in the group) and
        // one of its own connection (the joined snapshot). The second of two joins held behind the
        // room's lock finds its room replies sent by the first's flush; its snapshot is still its own
        // to send, at once, not left in the outbox for the sweep.
        const int Joiners = 2;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);

        var joiners = new List<ChatClient>();
        for (var i = 0; i < Joiners; i++)
            joiners.Add(await system.ConnectAsAsync(hub, $"Joiner{i}", $"elsewhere{i}"));
        var before = await MetricsAsync(worker);

        await using var database = await system.OpenDatabaseAsync();
        await using (var take = new Npgsql.NpgsqlCommand("SELECT pg_advisory_lock(hashtextextended('group:room:busy', 0))", database))
            await take.ExecuteNonQueryAsync();
        foreach (var joiner in joiners)
            await joiner.SendAsync("join", new { room = "busy" });
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= Joiners, "both joins' flushes wait for the room's lock");
        await using (var release = new Npgsql.NpgsqlCommand("SELECT pg_advisory_unlock(hashtextextended('group:room:busy', 0))", database))
            Assert.That(await release.ExecuteScalarAsync(), Is.True);

        var after = "";
        await Wait.UntilAsync(async () => Flushes(after = await MetricsAsync(worker)) - Flushes(before) >= Joiners, "the worker counted both flushes");
        await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM gateway_outbox", database);
        var left = (long)(await count.ExecuteScalarAsync())!;
        Assert.Multiple(() =>
        {
            Assert.That(Sample(after, "already_sent") - Sample(before, "already_sent"), Is.EqualTo(1), "the second join's flush found its room replies sent");
            Assert.That(left, Is.Zero, "no reply is left in the outbox once both flushes are done");
        });
        await Wait.UntilAsync(() => joiners.All(j => j.Events("joined").Any(e => e.GetProperty("room").GetString() == "busy")), "both joiners got their snapshot of the room");
    }

    private static double Sample(string metrics, string outcome) =>
        Prometheus.Sample(metrics, "worker_flushes_total", $"outcome=\"{outcome}\"");

    private static double Flushes(string metrics) => Sample(metrics, "sent") + Sample(metrics, "already_sent");

    private static async Task<string> MetricsAsync(ServiceProcess worker)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(worker.BaseAddress, "metrics"));
    }
}
