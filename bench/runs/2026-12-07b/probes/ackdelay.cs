#:package RabbitMQ.Client@7.2.2
// Does a publisher's confirm wait for the consumer's ack? dotnet run ackdelay.cs -- URI classic|classic2|quorum N ACK_DELAY_MS
// Persistent messages with confirms, one at a time, 50 ms apart, to a durable queue whose consumer
// (second connection) acks each delivery ACK_DELAY_MS after it arrives; prints publish -> confirmed.
using System.Diagnostics;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

var uri = args[0]; var qtype = args[1]; var n = int.Parse(args[2]); var delay = int.Parse(args[3]);
var f = new ConnectionFactory { Uri = new Uri(uri) };
await using var pc = await f.CreateConnectionAsync();
await using var cc = await f.CreateConnectionAsync();
await using var pub = await pc.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
await using var con = await cc.CreateChannelAsync();
var q = $"probe-ack-{qtype}";
var qargs = new Dictionary<string, object?>();
if (qtype == "quorum") qargs["x-queue-type"] = "quorum";
if (qtype == "classic2") qargs["x-queue-version"] = 2;
await con.QueueDeclareAsync(q, durable: true, exclusive: false, autoDelete: false, arguments: qargs);
await con.QueuePurgeAsync(q);
var consumer = new AsyncEventingBasicConsumer(con);
consumer.ReceivedAsync += (s, ea) => {
  var tag = ea.DeliveryTag;
  _ = Task.Run(async () => { if (delay > 0) await Task.Delay(delay); await con.BasicAckAsync(tag, false); });
  return Task.CompletedTask;
};
await con.BasicQosAsync(0, 64, false);
await con.BasicConsumeAsync(q, false, consumer);
var confirm = new List<double>();
var props = new BasicProperties { Persistent = true };
var body = new byte[300];
for (int i = 0; i < n; i++) {
  var t0 = Stopwatch.GetTimestamp();
  await pub.BasicPublishAsync("", q, true, props, body);
  confirm.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
  await Task.Delay(50);
}
confirm.Sort();
Console.WriteLine($"{qtype} ack after {delay} ms: confirm p50 {confirm[n/2]:F2} ms, p90 {confirm[n*9/10]:F2}, max {confirm[n-1]:F2}");
