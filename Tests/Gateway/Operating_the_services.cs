using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Operating_the_services
{
    [Test]
    public async Task Both_answer_liveness_readiness_and_metrics_whose_counters_move_under_traffic_per_hub_instance()
    {
        // Real processes, as deployed: one service per process, so the process-wide meters
        // (MassTransit's among them) belong to that service alone.
        await using var system = await TestSystem.CreateAsync();
        await using var workerProcess = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        await using var hubProcess = await ServiceProcess.StartAsync("Hub.Front.dll", system.Settings(new Dictionary<string, string?> { ["Gateway:InstanceId"] = "hub-metrics" }), system.Directory);
        var hub = hubProcess.BaseAddress;
        var workerBase = workerProcess.BaseAddress;
        var client = await system.ConnectAsAsync(new Uri(hub, "hub"), "Ada", "ops");

        using var http = new HttpClient();
        var before = await http.GetStringAsync(new Uri(hub, "metrics"));

        const int Sends = 5;
        for (var i = 0; i < Sends; i++)
            await client.SendAsync("say", new { room = "ops", text = $"counted {i}" });
        Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => client.SendAsync("bad type", null));
        await client.WaitForAsync("message", p => p.GetProperty("text").GetString() == $"counted {Sends - 1}");

        // The exporter refreshes its snapshot now and then: wait until it shows this traffic.
        string after = "";
        await Wait.UntilAsync(async () =>
        {
            after = await http.GetStringAsync(new Uri(hub, "metrics"));
            return Prometheus.Sample(after, "gateway_events_accepted_total", "") - Prometheus.Sample(before, "gateway_events_accepted_total", "") >= Sends
                && Prometheus.Sample(after, "gateway_events_rejected_total", "reason=\"invalid_type\"") >= 1
                && Prometheus.Sample(after, "gateway_commands_applied_total", "command=\"SendToGroup\"") > Prometheus.Sample(before, "gateway_commands_applied_total", "command=\"SendToGroup\"");
        }, "the hub's metrics show the accepted, rejected and applied counters moving");

        foreach (var service in new[] { hub, workerBase })
        {
            foreach (var path in new[] { "alive", "health/ready", "metrics" })
            {
                var response = await http.GetAsync(new Uri(service, path));
                Assert.That(response.IsSuccessStatusCode, Is.True, $"{service}{path} answered {(int)response.StatusCode}");
            }
        }
        var workerMetrics = await http.GetStringAsync(new Uri(workerBase, "metrics"));

        Assert.Multiple(() =>
        {
            // Counted on this instance, and the series say which instance they come from.
            Assert.That(Prometheus.Sample(after, "gateway_events_accepted_total", "hub_instance=\"hub-metrics\"") - Prometheus.Sample(before, "gateway_events_accepted_total", ""), Is.GreaterThanOrEqualTo(Sends));
            Assert.That(Prometheus.Sample(after, "gateway_connections", "hub_instance=\"hub-metrics\""), Is.EqualTo(1));
            Assert.That(Prometheus.Sample(after, "gateway_publish_duration_milliseconds_count", "hub_instance=\"hub-metrics\""), Is.GreaterThanOrEqualTo(Sends));
            Assert.That(after, Does.Match("target_info\\{[^}]*service_instance_id=\"hub-metrics\""));
            // MassTransit's own meter, in both services.
            Assert.That(Prometheus.Sample(after, "messaging_masstransit_send_ea_total", "messaging_masstransit_message_type=\"ClientMessage\""), Is.GreaterThanOrEqualTo(Sends));
            Assert.That(Prometheus.Sample(workerMetrics, "messaging_masstransit_consume_ea_total", "messaging_masstransit_message_type=\"ClientMessage\""), Is.GreaterThanOrEqualTo(Sends));
            // What has not happened yet shows as 0, not as a missing series.
            foreach (var (metric, label) in new[] { ("gateway_commands_fenced_total", "command=\"SendToGroup\""), ("gateway_commands_applied_total", "command=\"CloseConnection\""), ("gateway_sends_pending", "hub_instance=\"hub-metrics\"") })
                Assert.That(Prometheus.Has(after, metric, label) && Prometheus.Sample(after, metric, label) == 0, Is.True, $"the hub shows {metric}{{{label}}} at 0");
            foreach (var (metric, label) in new[] { ("worker_events_out_of_turn_total", "resolved=\"given_up\""), ("worker_events_out_of_turn_total", "resolved=\"requeued\""), ("worker_events_broker_unavailable_total", ""), ("worker_events_database_unavailable_total", ""), ("worker_events_conflicts_total", "") })
                Assert.That(Prometheus.Has(workerMetrics, metric, label) && Prometheus.Sample(workerMetrics, metric, label) == 0, Is.True, $"the worker shows {metric}{{{label}}} at 0");
        });
    }
}
