using SocketStarter.Baseline;
using SocketStarter.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddMonolithHub();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapMonolithHub();

app.Run();
