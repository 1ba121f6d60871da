using Dapper;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// An event whose predecessor the same worker applied takes its turn in its commit's round trip,
/// after the application's work, instead of in a round trip of its own before it. When the turn is
/// not the event's after all, nothing of it commits and it is applied again the usual way.
/// </summary>
public sealed class Taking_the_turn_with_the_commit
{
    [Test]
    public async Task A_connections_next_messages_on_the_worker_that_applied_its_last_take_their_turn_with_their_commit()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // A process of its own, so that its metrics are its alone.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");

        var texts = Enumerable.Range(1, 5).Select(i => $"message {i}").ToArray();
        foreach (var text in texts)
        {
            await ada.SendAsync("say", new { room = "lobby", text });
            await ada.WaitForAsync("message", m => m.GetProperty("text").GetString() == text);
        }

        var metrics = await MetricsAsync(worker);
        await using var database = await system.OpenDatabaseAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(Prometheus.Sample(metrics, "worker_events_turn_at_commit_total", "outcome=\"taken\""), Is.GreaterThanOrEqualTo(texts.Length),
                "every say followed an event of the same worker");
            Assert.That(ada.Messages("lobby").Select(m => m.Text), Is.EqualTo(texts), "each once, in order");
            Assert.That(await database.QueryAsync<string>("SELECT text FROM chat_messages ORDER BY seq"), Is.EqualTo(texts), "stored once each");
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT count(*) FROM gateway_outbox"), Is.Zero, "every reply sent");
        });
    }

    /// <summary>A worker of its own (its metrics are its alone), and Ada in the lobby, her "first" applied by it.</summary>
    private static async Task<(ServiceProcess Worker, ChatClient Ada)> AdaSaidFirstAsync(TestSystem system)
    {
        var hub = await system.StartHubAsync();
        var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");
        await ada.SendAsync("say", new { room = "lobby", text = "first" });
        await ada.WaitForAsync("message", m => m.GetProperty("text").GetString() == "first");
        return (worker, ada);
    }

    [Test]
    public async Task A_message_whose_seq_another_transaction_recorded_meanwhile_commits_nothing()
    {
        await using var system = await TestSystem.CreateAsync();
        var (worker, ada) = await AdaSaidFirstAsync(system);
        await using var _ = worker;

        // The test records Ada's next seq as applied, as another worker that applied her next event
        // (a redelivery, the other side of a handoff) would have. The worker still takes that event's
        // turn with its commit: it applied her last one itself.
        await using var database = await system.OpenDatabaseAsync();
        await database.ExecuteAsync("UPDATE gateway_connections SET last_seq = last_seq + 1 WHERE connection_id = @id", new { id = ada.ConnectionId });
        var second = await ada.SendAsync("say", new { room = "lobby", text = "second" });
        var third = await ada.SendAsync("say", new { room = "lobby", text = "third" });
        await ada.WaitForAsync("message", m => m.GetProperty("text").GetString() == "third");

        var metrics = await MetricsAsync(worker);
        Assert.Multiple(async () =>
        {
            Assert.That(third, Is.EqualTo(second + 1));
            Assert.That(await database.QueryAsync<string>("SELECT text FROM chat_messages ORDER BY seq"), Is.EqualTo(new[] { "first", "third" }),
                "the second is taken as applied elsewhere: its work was rolled back at its commit");
            Assert.That(ada.Messages("lobby").Select(m => m.Text), Is.EqualTo(new[] { "first", "third" }));
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT last_seq FROM chat_rooms WHERE room = 'lobby'"), Is.EqualTo(2), "no room seq taken for it");
            Assert.That(Prometheus.Sample(metrics, "worker_events_turn_at_commit_total", "outcome=\"lost\""), Is.GreaterThanOrEqualTo(1), "counted");
            Assert.That(ada.Events("error"), Is.Empty, "the client heard of no failure");
        });
    }

    [Test]
    public async Task A_refused_request_after_an_applied_one_is_refused_once_and_writes_nothing()
    {
        // The chat undoes a refused request (RollbackAsync), which needs the savepoint that taking the
        // turn first sets: the event runs again, its turn first, and is refused the usual way.
        await using var system = await TestSystem.CreateAsync();
        var (worker, ada) = await AdaSaidFirstAsync(system);
        await using var _ = worker;

        var refused = await ada.SendAsync("say", new { room = "elsewhere", text = "not a member" });
        await ada.WaitForErrorAsync(refused);
        await ada.SendAsync("say", new { room = "lobby", text = "after" });
        await ada.WaitForAsync("message", m => m.GetProperty("text").GetString() == "after");

        var metrics = await MetricsAsync(worker);
        await using var database = await system.OpenDatabaseAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(ada.Events("error").Count(e => e.GetProperty("seq").GetInt64() == refused), Is.EqualTo(1), "refused once");
            Assert.That(await database.QueryAsync<string>("SELECT text FROM chat_messages ORDER BY seq"), Is.EqualTo(new[] { "first", "after" }));
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT last_seq FROM gateway_connections WHERE connection_id = @id", new { id = ada.ConnectionId }),
                Is.EqualTo(refused + 1), "the refused request counts as applied");
            Assert.That(Prometheus.Sample(metrics, "worker_events_turn_at_commit_total", "outcome=\"lost\""), Is.GreaterThanOrEqualTo(1), "it needed its turn first");
        });
    }

    private static async Task<string> MetricsAsync(ServiceProcess worker)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(worker.BaseAddress, "metrics"));
    }
}
