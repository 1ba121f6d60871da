using System.Collections.Concurrent;
using System.Diagnostics;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Operations;

public sealed class Tracing_a_client_event
{
    private const string SignalRClientSource = "Microsoft.AspNetCore.SignalR.Client";
    private const string SignalRServerSource = "Microsoft.AspNetCore.SignalR.Server";

    [Test]
    public async Task Gives_one_trace_from_the_client_call_through_the_worker_back_to_the_hub()
    {
        // Hub and worker run in this process, so every span of both is seen here. This listener
        // records the test's own spans only; it asks nothing of the services' spans, so the
        // services' spans count as recorded only when their own OpenTelemetry set-up samples them.
        var spans = new ConcurrentDictionary<ActivitySpanId, Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.Source.Name is "test" or SignalRClientSource ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.PropagationData,
            ActivityStopped = a => spans[a.SpanId] = a,
        };
        ActivitySource.AddActivityListener(listener);
        using var source = new ActivitySource("test");

        await using var system = await TestSystem.CreateAsync();
        var hubUrl = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var client = await system.ConnectAsAsync(hubUrl, "Ada", "traced");

        ActivityTraceId traceId;
        using (var root = source.StartActivity("client says hello")!)
        {
            traceId = root.TraceId;
            await client.SendAsync("say", new { room = "traced", text = "follow me" });
        }
        await client.WaitForAsync("message", p => p.GetProperty("text").GetString() == "follow me");

        // The hub's consume of the worker's reply ends the journey; walk back from it to the root.
        Activity? replyApplied = null;
        await Wait.UntilAsync(() =>
        {
            replyApplied = spans.Values.FirstOrDefault(a => a.TraceId == traceId && a.Source.Name == "MassTransit"
                && a.OperationName.StartsWith("gateway-", StringComparison.Ordinal) && a.OperationName.EndsWith(" process", StringComparison.Ordinal));
            return replyApplied is not null;
        }, "the hub applied the worker's reply within the client's trace");

        var path = new List<Activity>();
        for (var span = replyApplied; span is not null; span = spans.GetValueOrDefault(span.ParentSpanId))
            path.Insert(0, span);
        var steps = path.Where(a => a.Source.Name != "RabbitMQ.Client.Subscriber" && a.Source.Name != "RabbitMQ.Client.Publisher")
            .Select(a => $"{a.Source.Name}: {a.DisplayName}").ToList();
        TestContext.Out.WriteLine(string.Join("\n", path.Select(a => $"{a.Source.Name}: {a.DisplayName} (all data requested {a.IsAllDataRequested})")));

        Assert.Multiple(() =>
        {
            Assert.That(path[0].DisplayName, Is.EqualTo("client says hello"), "the path leads back to the test's root span");
            Assert.That(steps, Is.EqualTo(new[]
            {
                "test: client says hello",
                $"{SignalRClientSource}: hub/Send",
                $"{SignalRServerSource}: SocketStarter.HubFront.GatewayHub/Send",
                "MassTransit: chat-worker send",
                // The shard queue the connection's events land in: chat-worker-00 … chat-worker-15.
                $"MassTransit: {Shard(steps)} receive",
                $"MassTransit: {Shard(steps)} process",
                // Targeted: to the exchange of hub instances, keyed by the instance holding the room's member.
                "MassTransit: gateway-instances send",
                $"MassTransit: {replyApplied!.DisplayName.Replace(" process", " receive", StringComparison.Ordinal)}",
                $"MassTransit: {replyApplied.DisplayName}",
            }));
            Assert.That(path.Select(a => a.TraceId).Distinct(), Is.EqualTo(new[] { traceId }));
            Assert.That(path.Where(a => a.Source.Name is SignalRServerSource or "MassTransit").Select(a => a.IsAllDataRequested),
                Is.All.True, "the services' own tracing samples the hub invocation and every MassTransit step");
        });
    }

    private static string Shard(List<string> steps) =>
        steps.Select(s => System.Text.RegularExpressions.Regex.Match(s, @"chat-worker-\d\d")).FirstOrDefault(m => m.Success)?.Value ?? "chat-worker-??";
}
