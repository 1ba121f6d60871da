using MassTransit;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.ChatWorker.Consumers;
using SocketStarter.ChatWorker.Gateway;
using SocketStarter.ChatWorker.Store;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.ChatWorker;

public static class Extensions
{
    /// <summary>The state store, the gateway side of the worker, the chat application and the bus.</summary>
    public static WebApplicationBuilder AddChatWorker(this WebApplicationBuilder builder)
    {
        var brokerUri = RabbitMqConnection.GetRequiredUri(builder.Configuration);

        builder.Services.AddOptions<WorkerOptions>()
            .BindConfiguration(WorkerOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddOptions<ChatOptions>()
            .BindConfiguration(ChatOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddOptions<StoreOptions>()
            .BindConfiguration(StoreOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<SqliteStore>();
        builder.Services.AddSingleton<StoreWriter>();
        builder.Services.AddSingleton<IStoreSchema, GatewaySchema>();
        builder.Services.AddSingleton<IStoreSchema, ChatSchema>();
        // Registered before the bus, so the tables exist before the first message.
        builder.Services.AddHostedService<StoreInitializer>();
        builder.Services.AddHealthChecks().AddCheck<SqliteStore>("store", tags: [ServiceDefaults.Extensions.ReadyTag]);

        builder.Services.AddSingleton<Outbox>();
        builder.Services.AddSingleton<UpstreamEventProcessor>();
        builder.Services.AddSingleton<WorkerMetrics>();
        builder.Services.AddSingleton<HubInstances>();
        builder.Services.AddHostedService<OutboxSweeper>();
        builder.Services.AddHostedService<HubInstanceReaper>();
        builder.Services.AddHostedService<ExpiredSessionSweeper>();
        builder.Services.AddSingleton<IGatewayApplication, ChatApplication>();

        builder.Services.AddOptions<MassTransitHostOptions>().Configure(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromSeconds(60);
            // Graceful stop: in-flight events finish before the process exits.
            o.ConsumerStopTimeout = TimeSpan.FromSeconds(20);
            o.StopTimeout = TimeSpan.FromSeconds(25);
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        builder.Services.AddMassTransit(x =>
        {
            x.AddConsumer<UpstreamConsumer, UpstreamConsumerDefinition>();
            // Every worker hears every heartbeat: a queue of its own, deleted when it goes.
            x.AddConsumer<HeartbeatConsumer>().Endpoint(e =>
            {
                e.Name = $"worker-heartbeats-{Guid.NewGuid():N}";
                e.Temporary = true;
            });
            x.UsingRabbitMq((context, cfg) =>
            {
                cfg.Host(brokerUri);
                cfg.ConfigureEndpoints(context);
            });
        });

        return builder;
    }
}
