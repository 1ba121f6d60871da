using Microsoft.AspNetCore.Http.Connections;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.GatewayWorker;

namespace SocketStarter.Baseline;

public static class Extensions
{
    /// <summary>
    /// The chat of Chat.Worker, with the same runtime, database and outbox, inside a plain SignalR hub: no
    /// broker in between. Replies go straight to SignalR.
    /// </summary>
    public static WebApplicationBuilder AddMonolithHub(this WebApplicationBuilder builder)
    {
        builder.AddGatewayRuntime<ChatApplication>()
            .AddMigrations(typeof(ChatApplication).Assembly);
        builder.Services.AddSingleton<SignalRDispatcher>();
        builder.Services.AddSingleton(new EventGate(EventGate.DefaultLimit));

        builder.Services.AddSignalR();
        return builder;
    }

    public static WebApplication MapMonolithHub(this WebApplication app)
    {
        app.MapHub<MonolithHub>(MonolithHub.Path, o => o.Transports = HttpTransportType.WebSockets | HttpTransportType.ServerSentEvents | HttpTransportType.LongPolling);
        return app;
    }
}
