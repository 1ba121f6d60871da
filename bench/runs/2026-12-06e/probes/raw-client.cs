#:package RabbitMQ.Client@7.2.2
// The broker's own hop with the plain client (2026-12-06, fifth session; bench/RESULTS.md). Run against
// any node: dotnet run raw-client.cs -- amqp://guest:guest@127.0.0.1:PORT/ quorum|classic 200
// Publishes persistent messages with confirms one at a time, 50 ms apart; prints the medians of
// publish -> confirmed and publish -> delivered (consumer on a second connection).
using System.Diagnostics;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

var uri = args[0]; var qtype = args[1]; var n = int.Parse(args[2]);
var f = new ConnectionFactory { Uri = new Uri(uri) };
await using var pc = await f.CreateConnectionAsync();
await using var cc = await f.CreateConnectionAsync();
await using var pub = await pc.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
await using var con = await cc.CreateChannelAsync();
var q = "probe-" + qtype;
var qargs = new Dictionary<string, object?>();
if (qtype != "classic") qargs["x-queue-type"] = qtype;
await con.QueueDeclareAsync(q, durable: true, exclusive: false, autoDelete: false, arguments: qargs);
await con.QueuePurgeAsync(q);
var got = new System.Collections.Concurrent.ConcurrentDictionary<long, long>();
var consumer = new AsyncEventingBasicConsumer(con);
consumer.ReceivedAsync += async (s, ea) => {
  var id = BitConverter.ToInt64(ea.Body.Span);
  got[id] = Stopwatch.GetTimestamp();
  await con.BasicAckAsync(ea.DeliveryTag, false);
};
await con.BasicQosAsync(0, 16, false);
await con.BasicConsumeAsync(q, false, consumer);
var deliver = new List<double>(); var confirm = new List<double>();
var props = new BasicProperties { Persistent = true };
for (int i = 0; i < n; i++) {
  var t0 = Stopwatch.GetTimestamp();
  await pub.BasicPublishAsync("", q, true, props, BitConverter.GetBytes((long)i));
  var t1 = Stopwatch.GetTimestamp();
  confirm.Add((t1 - t0) * 1000.0 / Stopwatch.Frequency);
  while (!got.ContainsKey(i)) await Task.Delay(1); // polls; the delivery time is taken in the consumer
  deliver.Add((got[i] - t0) * 1000.0 / Stopwatch.Frequency);
  await Task.Delay(50);
}
deliver.Sort(); confirm.Sort();
Console.WriteLine($"{qtype}: confirm p50 {confirm[n/2]:F2} ms, deliver p50 {deliver[n/2]:F2} ms, deliver p90 {deliver[n*9/10]:F2}");
