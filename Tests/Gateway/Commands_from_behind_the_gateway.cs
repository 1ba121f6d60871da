using System.Text.Json;
using MassTransit;
using SocketStarter.Messages;
using SocketStarter.ServiceDefaults;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// Every hub instance gets every command and acts on the connections it holds; here the commands
/// come from a plain MassTransit bus, as from any service behind the gateway.
/// </summary>
public sealed class Commands_from_behind_the_gateway
{
    private TestSystem _system = null!;
    private IBusControl _bus = null!;
    private ChatClient _onFirst = null!;
    private ChatClient _alsoOnFirst = null!;
    private ChatClient _onSecond = null!;
    private Uri _first = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _system = await TestSystem.CreateAsync();
        var first = _first = await _system.StartHubAsync(new Dictionary<string, string?> { ["Gateway:InstanceId"] = "first" });
        var second = await _system.StartHubAsync();
        _onFirst = await _system.ConnectAsync(first);
        _alsoOnFirst = await _system.ConnectAsync(first);
        _onSecond = await _system.ConnectAsync(second);
        _bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(_system.BrokerUri));
        await _bus.StartAsync();
    }

    [TearDown]
    public async Task StopAsync()
    {
        await _bus.StopAsync();
        await _system.DisposeAsync();
    }

    [Test]
    public async Task Send_to_connections_reaches_them_on_whichever_instance_holds_them()
    {
        await _bus.Publish(new SendToConnections { ConnectionIds = [_onFirst.ConnectionId, _onSecond.ConnectionId], Type = "ping", Payload = Payload(1) });
        await _bus.Publish(new SendToAll { Type = "done", Payload = Payload(2) });
        await WaitForAllAsync("done");

        Assert.Multiple(() =>
        {
            Assert.That(_onFirst.Events("ping"), Has.Count.EqualTo(1));
            Assert.That(_onSecond.Events("ping"), Has.Count.EqualTo(1));
            Assert.That(_alsoOnFirst.Events("ping"), Is.Empty);
        });
    }

    [Test]
    public async Task A_group_spans_instances_honours_exceptions_and_forgets_removed_members()
    {
        foreach (var client in new[] { _onFirst, _alsoOnFirst, _onSecond })
            await _bus.Publish(new AddToGroup { ConnectionId = client.ConnectionId, Group = "g" });
        await _bus.Publish(new SendToGroup { Group = "g", ExceptConnectionIds = [_alsoOnFirst.ConnectionId], Type = "first", Payload = Payload(1) });
        await _bus.Publish(new RemoveFromGroup { ConnectionId = _onSecond.ConnectionId, Group = "g" });
        await _bus.Publish(new SendToGroup { Group = "g", Type = "second", Payload = Payload(2) });
        await _bus.Publish(new SendToAll { Type = "done", Payload = Payload(3) });
        await WaitForAllAsync("done");

        Assert.Multiple(() =>
        {
            Assert.That(_onFirst.Events("first"), Has.Count.EqualTo(1));
            Assert.That(_onSecond.Events("first"), Has.Count.EqualTo(1));
            Assert.That(_alsoOnFirst.Events("first"), Is.Empty, "excepted");
            Assert.That(_onFirst.Events("second"), Has.Count.EqualTo(1));
            Assert.That(_alsoOnFirst.Events("second"), Has.Count.EqualTo(1));
            Assert.That(_onSecond.Events("second"), Is.Empty, "removed from the group");
        });
    }

    [Test]
    public async Task Send_to_all_skips_the_exceptions()
    {
        await _bus.Publish(new SendToAll { ExceptConnectionIds = [_onSecond.ConnectionId], Type = "news", Payload = Payload(1) });
        await _bus.Publish(new SendToAll { Type = "done", Payload = Payload(2) });
        await WaitForAllAsync("done");

        Assert.Multiple(() =>
        {
            Assert.That(_onFirst.Events("news").Single().GetProperty("n").GetInt32(), Is.EqualTo(1));
            Assert.That(_alsoOnFirst.Events("news"), Has.Count.EqualTo(1));
            Assert.That(_onSecond.Events("news"), Is.Empty);
        });
    }

    [Test]
    public async Task Close_connection_tells_the_client_why_and_closes_only_that_one()
    {
        await _bus.Publish(new CloseConnection { ConnectionId = _onSecond.ConnectionId, Reason = "kicked for testing" });
        await Wait.UntilAsync(() => _onSecond.TimesClosed == 1, "the connection is closed");
        await _bus.Publish(new SendToAll { Type = "done", Payload = Payload(1) });
        await _onFirst.WaitForAsync("done");
        await _alsoOnFirst.WaitForAsync("done");

        Assert.Multiple(() =>
        {
            Assert.That(_onSecond.ClosingReason, Is.EqualTo("kicked for testing"));
            Assert.That(_onFirst.TimesClosed + _alsoOnFirst.TimesClosed, Is.Zero);
        });
    }

    /// <summary>
    /// What a worker's ordered flush stamps on a group's commands (its key, its number): a command
    /// from a flush older than one the instance already applied for the key is a late copy (a send
    /// the worker let go when the broker blocked it) and is dropped; the same flush, another key
    /// and a command without the stamp pass.
    /// </summary>
    [Test]
    public async Task A_late_copy_from_an_older_flush_of_a_group_is_dropped_and_everything_else_passes()
    {
        await _bus.Publish(new AddToGroup { ConnectionId = _onFirst.ConnectionId, Group = "g" });
        await PublishFromFlushAsync(new SendToGroup { Group = "g", Type = "newer", Payload = Payload(1) }, "group:g", 20);
        await PublishFromFlushAsync(new SendToGroup { Group = "g", Type = "late", Payload = Payload(2) }, "group:g", 10);
        await PublishFromFlushAsync(new RemoveFromGroup { ConnectionId = _onFirst.ConnectionId, Group = "g" }, "group:g", 19);
        await PublishFromFlushAsync(new SendToGroup { Group = "g", Type = "same-flush", Payload = Payload(3) }, "group:g", 20);
        await PublishFromFlushAsync(new SendToGroup { Group = "g", Type = "other-key", Payload = Payload(4) }, "group:h", 5);
        await _bus.Publish(new SendToGroup { Group = "g", Type = "unnumbered", Payload = Payload(5) });
        await _bus.Publish(new SendToAll { Type = "done", Payload = Payload(6) });
        await WaitForAllAsync("done");

        using var http = new HttpClient();
        var page = string.Join('\n', (await http.GetStringAsync(new Uri(_first, "/metrics"))).Split('\n').Where(l => l.Contains("hub_instance=\"first\"", StringComparison.Ordinal)));
        Assert.Multiple(() =>
        {
            Assert.That(_onFirst.Events("newer"), Has.Count.EqualTo(1));
            Assert.That(_onFirst.Events("late"), Is.Empty, "a late copy of flush 10 after flush 20");
            Assert.That(_onFirst.Events("same-flush"), Has.Count.EqualTo(1), "still in the group: the late removal was dropped");
            Assert.That(_onFirst.Events("other-key"), Has.Count.EqualTo(1));
            Assert.That(_onFirst.Events("unnumbered"), Has.Count.EqualTo(1));
            Assert.That(Prometheus.Sample(page, "gateway_commands_fenced_total", "command=\"SendToGroup\""), Is.EqualTo(1));
            Assert.That(Prometheus.Sample(page, "gateway_commands_fenced_total", "command=\"RemoveFromGroup\""), Is.EqualTo(1));
        });
    }

    private Task PublishFromFlushAsync<T>(T command, string orderKey, long flush) where T : class =>
        _bus.Publish(command, context =>
        {
            context.Headers.Set(CommandRouting.OrderKeyHeader, orderKey);
            context.Headers.Set(CommandRouting.OrderFlushHeader, flush);
        });

    private static JsonElement Payload(int n) => JsonSerializer.SerializeToElement(new { n });

    private async Task WaitForAllAsync(string type)
    {
        foreach (var client in new[] { _onFirst, _alsoOnFirst, _onSecond })
            await client.WaitForAsync(type);
    }
}
