#:project /work/main/Hub.Front/Hub.Front.csproj
#:property TreatWarningsAsErrors=false
using System.Diagnostics;
using Microsoft.Extensions.Options;
using SocketStarter.HubFront;
using SocketStarter.HubFront.Consumers;

var fence = new OrderFence(Options.Create(new GatewayOptions()), TimeProvider.System);
var keys = Enumerable.Range(0, 1000).Select(i => $"group:room:r{i}").ToArray();
long n = 0;
for (var round = 0; round < 3; round++)
{
    var sw = Stopwatch.StartNew();
    const int Count = 5_000_000;
    for (var i = 0; i < Count; i++)
        if (fence.Admit(keys[i % keys.Length], ++n)) { }
    Console.WriteLine($"Admit(key, flush): {sw.Elapsed.TotalMilliseconds * 1e6 / Count:F0} ns per command");
}
