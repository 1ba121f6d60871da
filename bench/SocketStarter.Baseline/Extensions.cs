using Microsoft.AspNetCore.Http.Connections;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.ChatWorker.Gateway;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.Baseline;

public static class Extensions
{
    /// <summary>
    /// The chat of Chat.Worker, with its SQLite store and outbox, inside a plain SignalR hub: no
    /// broker in between. Replies go straight to SignalR.
    /// </summary>
    public static WebApplicationBuilder AddMonolithHub(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<StoreOptions>()
            .BindConfiguration(StoreOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<SqliteStore>();
        builder.Services.AddSingleton<StoreWriter>();
        builder.Services.AddSingleton<IStoreSchema, GatewaySchema>();
        builder.Services.AddSingleton<IStoreSchema, ChatSchema>();
        builder.Services.AddHostedService<StoreInitializer>();
        builder.Services.AddHealthChecks().AddCheck<SqliteStore>("store", tags: [ServiceDefaults.Extensions.ReadyTag]);

        builder.Services.AddSingleton<Outbox>();
        builder.Services.AddSingleton<UpstreamEventProcessor>();
        builder.Services.AddSingleton<IGatewayApplication, ChatApplication>();
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
