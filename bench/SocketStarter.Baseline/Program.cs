using SocketStarter.Baseline;
using SocketStarter.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

// The runtime's meter too: the apply and reply hops, side by side with the gateway's (bench/RESULTS.md).
builder.AddServiceDefaults(SocketStarter.GatewayWorker.WorkerMetrics.MeterName);
builder.AddMonolithHub();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapMonolithHub();

app.Run();
