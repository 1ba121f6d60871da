using SocketStarter.ChatWorker;
using SocketStarter.GatewayWorker;
using SocketStarter.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults(WorkerMetrics.MeterName);
builder.AddChatWorker();

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
