#:package Microsoft.AspNetCore.SignalR.Client@10.0.15
#:property PublishAot=false
#:property JsonSerializerIsReflectionEnabledByDefault=true
// A client that joins a room and stops reading, and a live client on the same hub (2026-12-06,
// fifth session; bench/RESULTS.md). Against a running system (scripts/start, with
// Limits__EventsPerSecond=1000 Limits__EventBurst=5000 so that one talker may send ~150/s):
//   dotnet run slow-reader.cs -- http://127.0.0.1:5000/hub SECONDS 1 [apart]
// The stuck client is a raw WebSocket speaking SignalR's JSON protocol: it signs in, joins, reads
// until "joined", then never reads again (it keeps pinging). A talker sends 3,900-character
// messages to its room ("apart": small ones to the live client's room, and a filler the large
// ones to the stuck client's room). Prints every pause over 0.5 s in the live client's deliveries.
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

var hubUrl = args[0]; var seconds = int.Parse(args[1]); var stuck = args[2] == "1"; var apart = args.Length > 3 && args[3] == "apart";
var room = "slow" + Random.Shared.Next(100000);
var stuckRoom = apart ? room + "-stuck" : room;
async Task<HubConnection> ConnectAsync(string name, Action<string, JsonElement>? onEvent = null, string? inRoom = null)
{
    var c = new HubConnectionBuilder().WithUrl(hubUrl, o => { o.Transports = HttpTransportType.WebSockets; o.SkipNegotiation = true; }).Build();
    c.On<string, JsonElement>("Event", (t, p) => onEvent?.Invoke(t, p));
    await c.StartAsync();
    await c.InvokeAsync<long>("Send", "signIn", JsonSerializer.SerializeToElement(new { name }));
    await c.InvokeAsync<long>("Send", "join", JsonSerializer.SerializeToElement(new { room = inRoom ?? room }));
    return c;
}

ClientWebSocket? raw = null;
if (stuck)
{
    raw = new ClientWebSocket();
    await raw.ConnectAsync(new Uri(hubUrl.Replace("http", "ws")), CancellationToken.None);
    async Task SendRaw(string json) => await raw.SendAsync(Encoding.UTF8.GetBytes(json + "\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
    await SendRaw("{\"protocol\":\"json\",\"version\":1}");
    await SendRaw("{\"type\":1,\"invocationId\":\"1\",\"target\":\"Send\",\"arguments\":[\"signIn\",{\"name\":\"Stuck" + Random.Shared.Next(100000) + "\"}]}");
    await SendRaw("{\"type\":1,\"invocationId\":\"2\",\"target\":\"Send\",\"arguments\":[\"join\",{\"room\":\"" + stuckRoom + "\"}]}");
    // Read for a moment (handshake, answers, joined), then never again; keep pinging so the hub does not time it out.
    var buffer = new byte[65536];
    var seen = new StringBuilder();
    // Never a cancelled receive: cancelling one aborts the WebSocket.
    var reading = Task.Run(async () =>
    {
        while (!seen.ToString().Contains("\"joined\""))
        {
            var r = await raw.ReceiveAsync(buffer, CancellationToken.None);
            seen.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
        }
    });
    if (await Task.WhenAny(reading, Task.Delay(10000)) != reading) throw new Exception("the stuck client never saw joined: " + seen);
    var since = Stopwatch.StartNew();
    _ = Task.Run(async () => { while (true) { await Task.Delay(5000); try { await SendRaw("{\"type\":6}"); } catch (Exception ex) { Console.WriteLine($"stuck client's ping failed {since.Elapsed.TotalSeconds:0.0} s after it stopped reading: {ex.GetType().Name}"); return; } } });
    Console.WriteLine("stuck client joined and stopped reading");
}

var received = 0L; var lastAt = Stopwatch.StartNew(); var longestGap = TimeSpan.Zero; var clock = Stopwatch.StartNew();
var gaps = new List<(double At, double Gap)>();
var live = await ConnectAsync("Live" + Random.Shared.Next(100000), (t, p) =>
{
    if (t != "message") return;
    lock (gaps)
    {
        var gap = lastAt.Elapsed; lastAt.Restart(); received++;
        if (gap > TimeSpan.FromMilliseconds(500)) gaps.Add((clock.Elapsed.TotalSeconds, gap.TotalSeconds));
    }
});
var talker = await ConnectAsync("Talker" + Random.Shared.Next(100000));
var filler = apart ? await ConnectAsync("Filler" + Random.Shared.Next(100000), null, stuckRoom) : null;
var text = new string('x', 3900);
var sent = 0;
lastAt.Restart(); clock.Restart();
while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
{
    await talker.InvokeAsync<long>("Send", "say", JsonSerializer.SerializeToElement(new { room, text = apart ? "small" : text }));
    if (filler is not null) await filler.InvokeAsync<long>("Send", "say", JsonSerializer.SerializeToElement(new { room = stuckRoom, text }));
    sent++;
    await Task.Delay(2);
}
await Task.Delay(10000);
lock (gaps)
{
    Console.WriteLine($"stuck={stuck} apart={apart} sent {sent}, live received {received}; pauses over 0.5 s in the live client's deliveries: {gaps.Count}");
    foreach (var (at, gap) in gaps) Console.WriteLine($"  at {at:0.0} s: {gap:0.00} s without a message");
}
if (raw is not null)
{
    // What the stuck client has waiting for it, once it reads again: the room's messages, or a close.
    long bytes = 0; var messages = 0; var buf = new byte[1 << 20]; string? closed = null;
    var reading = Stopwatch.StartNew();
    while (reading.Elapsed < TimeSpan.FromSeconds(20))
    {
        using var cts = new CancellationTokenSource(2000);
        try
        {
            var r = await raw.ReceiveAsync(buf, cts.Token);
            if (r.MessageType == WebSocketMessageType.Close) { closed = $"{raw.CloseStatus} {raw.CloseStatusDescription}"; break; }
            bytes += r.Count;
            messages += Encoding.UTF8.GetString(buf, 0, r.Count).Split("\"message\"").Length - 1;
        }
        catch (OperationCanceledException) { break; }
        catch (WebSocketException ex) { closed = ex.Message; break; }
    }
    Console.WriteLine($"the stuck client then read {bytes / 1e6:0.0} MB holding {messages} messages; closed: {closed ?? "no"}; state {raw.State}");
}
