using System.Text.Json;
using SocketStarter.GatewayWorker;
using SocketStarter.Messages;
using SocketStarter.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults(WorkerMetrics.MeterName);
builder.AddGatewayWorker<Counter>().AddMigrations(typeof(Counter).Assembly);
var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();

/// <summary>One shared counter: a client sends <c>add {by}</c>; every client hears the new <c>total</c>.</summary>
public sealed class Counter : IGatewayApplication
{
    public async Task OnMessageAsync(GatewayEventContext context, ClientMessage message)
    {
        if (message.Type != "add" || message.Payload.ValueKind != JsonValueKind.Object
            || !message.Payload.TryGetProperty("by", out var by) || by.ValueKind != JsonValueKind.Number || !by.TryGetInt64(out var amount))
        {
            await context.SendToConnectionAsync(context.ConnectionId, "error", new { code = "invalid", seq = message.Seq });
            return;
        }
        var total = await context.ExecuteScalarAsync<long>("UPDATE counter SET total = total + @amount RETURNING total", new { amount });
        await context.SendToAllAsync("total", new { total });
    }

    public Task OnConnectedAsync(GatewayEventContext context, ClientConnected message) => Task.CompletedTask;
    public Task OnDisconnectedAsync(GatewayEventContext context, ClientDisconnected message) => Task.CompletedTask;
    public Task OnFailedAsync(GatewayEventContext context, Exception exception) =>
        context.SendToConnectionAsync(context.ConnectionId, "error", new { code = "internal_error", seq = context.Seq });
}
