using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Limits;

/// <summary>A client over a limit gets a clear error; one that keeps going is closed; nobody else notices.</summary>
public sealed class Abusing_the_hub
{
    private TestSystem _system = null!;
    private Uri _hub = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _system = await TestSystem.CreateAsync();
        _hub = await _system.StartHubAsync(new Dictionary<string, string?>
        {
            ["Limits:EventsPerSecond"] = "1",
            ["Limits:EventBurst"] = "5",
            ["Limits:ViolationsBeforeClose"] = "3",
            ["Limits:MaxConnectionsPerAddress"] = "3",
            ["Gateway:MaxPayloadBytes"] = "1024",
        });
        await _system.StartWorkerAsync();
    }

    [TearDown]
    public async Task StopAsync() => await _system.DisposeAsync();

    [Test]
    public async Task A_client_over_the_event_rate_is_refused_with_rate_limited_and_others_are_unaffected()
    {
        var flooder = await _system.ConnectAsync(_hub);
        var bystander = await _system.ConnectAsync(_hub);

        var accepted = 0;
        HubException? refused = null;
        for (var i = 0; i < 10 && refused is null; i++)
        {
            try
            {
                await flooder.SendAsync("ping", new { i });
                accepted++;
            }
            catch (HubException ex)
            {
                refused = ex;
            }
        }
        var bystanderSeq = await bystander.SendAsync("ping", new { });

        Assert.Multiple(() =>
        {
            Assert.That(refused?.Message, Does.Contain("HubException: rate_limited:").And.Contain("1 events per second"));
            // The exact count depends on how long the sends took (a token per second refills meanwhile);
            // Spending_an_event_budget pins the arithmetic on a fake clock.
            Assert.That(accepted, Is.GreaterThanOrEqualTo(5), "the whole burst is accepted");
            Assert.That(flooder.State, Is.EqualTo(HubConnectionState.Connected), "one refusal does not close the connection");
            Assert.That(bystanderSeq, Is.EqualTo(2));
        });
        await AssertMetricAsync("reason=\"rate_limited\"");
    }

    [Test]
    public async Task A_client_that_keeps_flooding_is_closed_with_a_reason_and_others_stay()
    {
        var flooder = await _system.ConnectAsync(_hub);
        var bystander = await _system.ConnectAsync(_hub);

        var refusals = new List<string>();
        for (var i = 0; i < 30 && flooder.TimesClosed == 0; i++)
        {
            try { await flooder.SendAsync("ping", new { i }); }
            catch (HubException ex) { refusals.Add(ex.Message); }
            catch (Exception ex) when (ex is not HubException) { break; }
        }
        await Wait.UntilAsync(() => flooder.TimesClosed == 1, "the flooding connection is closed");

        Assert.Multiple(() =>
        {
            Assert.That(flooder.ClosingReason, Does.StartWith("too_many_violations:").And.Contain("rate_limited"));
            Assert.That(refusals, Has.Count.InRange(2, 3));
            Assert.That(refusals, Has.All.Contain("HubException: rate_limited:"));
            Assert.That(bystander.State, Is.EqualTo(HubConnectionState.Connected));
            Assert.That(bystander.TimesClosed, Is.Zero);
        });
        Assert.That(await bystander.SendAsync("ping", new { }), Is.EqualTo(2));
        await AssertMetricAsync("gateway_connections_closed_by_limits");
    }

    [Test]
    public async Task Oversized_and_malformed_events_count_towards_closing_and_an_accepted_one_resets_the_count()
    {
        // Out of the way of the rate limit: this is about the other refusals.
        var hub = await _system.StartHubAsync(new Dictionary<string, string?>
        {
            ["Limits:ViolationsBeforeClose"] = "3",
            ["Gateway:MaxPayloadBytes"] = "1024",
        });
        var client = await _system.ConnectAsync(hub);
        var big = new { text = new string('x', 2000) };

        Assert.ThrowsAsync<HubException>(() => client.SendAsync("big", big));
        Assert.ThrowsAsync<HubException>(() => client.SendAsync("bad type", null));
        await client.SendAsync("fine", null);
        Assert.ThrowsAsync<HubException>(() => client.SendAsync("big", big));
        Assert.ThrowsAsync<HubException>(() => client.SendAsync("bad type", null));
        Assert.That(client.TimesClosed, Is.Zero, "two in a row after an accepted event are under the limit of 3");

        Assert.CatchAsync(() => client.SendAsync("big", big));
        await Wait.UntilAsync(() => client.TimesClosed == 1, "the connection is closed at the third refusal in a row");
        Assert.That(client.ClosingReason, Does.StartWith("too_many_violations:").And.Contain("payload_too_large"));
    }

    [Test]
    public async Task A_hub_protocol_frame_over_the_limit_closes_only_that_connection()
    {
        var client = await _system.ConnectAsync(_hub);
        var bystander = await _system.ConnectAsync(_hub);

        // Gateway:MaxPayloadBytes 1024 gives frames of up to 4 * 1024 + 4096 bytes.
        Assert.CatchAsync(() => client.SendAsync("huge", new { text = new string('x', 20_000) }));
        await Wait.UntilAsync(() => client.TimesClosed == 1, "SignalR closes the connection");

        Assert.That(await bystander.SendAsync("ping", null), Is.EqualTo(2));
    }

    [Test]
    public async Task Connections_over_the_per_address_limit_are_refused_with_a_reason_until_one_closes()
    {
        var first = await _system.ConnectAsync(_hub);
        await _system.ConnectAsync(_hub);
        var third = await _system.ConnectAsync(_hub);

        var refused = await _system.ConnectAsync(_hub);
        await Wait.UntilAsync(() => refused.TimesClosed == 1, "the fourth connection is closed");
        Assert.Multiple(() =>
        {
            Assert.That(refused.ClosingReason, Does.StartWith("too_many_connections:").And.Contain("the limit is 3"));
            Assert.That(refused.CloseError?.Message, Does.Contain("too_many_connections"));
            Assert.That(first.TimesClosed + third.TimesClosed, Is.Zero);
        });

        await first.DisposeAsync();
        ChatClient? admitted = null;
        // The hub frees the slot when it sees the close, a moment after the client returns.
        await Wait.UntilAsync(async () =>
        {
            var attempt = await _system.ConnectAsync(_hub);
            try
            {
                await attempt.SendAsync("ping", null);
                admitted = attempt;
                return true;
            }
            catch (Exception)
            {
                return false;
            }
        }, "a new connection is admitted once one closed");
        Assert.That(admitted!.TimesClosed, Is.Zero);
        await AssertMetricAsync("reason=\"too_many_connections\"");
    }

    private async Task AssertMetricAsync(string text)
    {
        using var http = new HttpClient();
        var metrics = "";
        await Wait.UntilAsync(async () =>
        {
            metrics = await http.GetStringAsync(new Uri(_hub, "/metrics"));
            return metrics.Contains(text, StringComparison.Ordinal);
        }, $"the hub's metrics show {text}");
    }
}
