#:package MassTransit.RabbitMQ@8.5.12
#:property PublishAot=false
#:property JsonSerializerIsReflectionEnabledByDefault=true
// The same hop through a bare MassTransit 8.5 bus (2026-12-06, fifth session; bench/RESULTS.md):
// dotnet run masstransit.cs -- amqp://guest:guest@127.0.0.1:PORT/ quorum|classic 200
// Send to a queue and a handler on it, nothing else; 50 ms between messages.
using System.Diagnostics;
using MassTransit;
using Probe;

var uri = args[0]; var qtype = args[1]; var n = int.Parse(args[2]);
var got = new System.Collections.Concurrent.ConcurrentDictionary<long, long>();
var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
{
    cfg.Host(new Uri(uri));
    cfg.ReceiveEndpoint("probe-mt-" + qtype, e =>
    {
        if (qtype == "quorum") e.SetQuorumQueue();
        e.PrefetchCount = 16;
        e.ConcurrentMessageLimit = 16;
        e.Handler<Ping>(ctx => { got[ctx.Message.Id] = Stopwatch.GetTimestamp(); return Task.CompletedTask; });
    });
});
Console.WriteLine("starting"); await bus.StartAsync(new CancellationTokenSource(15000).Token); Console.WriteLine("started");
var ep = await bus.GetSendEndpoint(new Uri("queue:probe-mt-" + qtype + (qtype == "quorum" ? "?bind=false&queue-type=quorum" : "")));
var deliver = new List<double>(); var confirm = new List<double>();
for (long i = 0; i < n; i++) {
  var t0 = Stopwatch.GetTimestamp();
  await ep.Send(new Ping(i));
  var t1 = Stopwatch.GetTimestamp();
  confirm.Add((t1 - t0) * 1000.0 / Stopwatch.Frequency);
  while (!got.ContainsKey(i)) await Task.Delay(1); // polls; the delivery time is taken in the consumer
  deliver.Add((got[i] - t0) * 1000.0 / Stopwatch.Frequency);
  await Task.Delay(50);
}
deliver.Sort(); confirm.Sort();
Console.WriteLine($"MT {qtype}: confirm p50 {confirm[n/2]:F2} ms, deliver p50 {deliver[n/2]:F2} ms, deliver p90 {deliver[n*9/10]:F2}");
await bus.StopAsync();
namespace Probe { public record Ping(long Id); }
