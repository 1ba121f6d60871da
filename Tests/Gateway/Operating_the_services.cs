using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Operating_the_services
{
    [Test]
    public async Task Both_answer_liveness_readiness_and_metrics_and_the_hub_counts_what_it_accepts()
    {
        await using var system = await TestSystem.CreateAsync();
        var hubUrl = await system.StartHubAsync();
        var worker = await system.StartWorkerAsync();
        var client = await system.ConnectAsAsync(hubUrl, "Ada", "ops");
        await client.SendAsync("say", new { room = "ops", text = "counted" });
        Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => client.SendAsync("bad type", null));

        using var http = new HttpClient();
        var hub = new Uri(hubUrl, "/");
        var workerBase = new Uri(worker.Urls.First());
        string hubMetrics = "";
        await Wait.UntilAsync(async () =>
        {
            hubMetrics = await http.GetStringAsync(new Uri(hub, "metrics"));
            return hubMetrics.Contains("gateway_events_accepted", StringComparison.Ordinal)
                && hubMetrics.Contains("gateway_events_rejected", StringComparison.Ordinal);
        }, "the hub's metrics show accepted and rejected events");

        foreach (var service in new[] { hub, workerBase })
        {
            foreach (var path in new[] { "alive", "health/ready", "metrics" })
            {
                var response = await http.GetAsync(new Uri(service, path));
                Assert.That(response.IsSuccessStatusCode, Is.True, $"{service}{path} answered {(int)response.StatusCode}");
            }
        }
        Assert.Multiple(() =>
        {
            Assert.That(hubMetrics, Does.Contain("reason=\"invalid_type\""));
            Assert.That(hubMetrics, Does.Contain("gateway_connections"));
        });
    }
}
