using System.Reflection;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Npgsql;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using SocketStarter.GatewayWorker.Consumers;
using SocketStarter.GatewayWorker.Shards;
using SocketStarter.GatewayWorker.Store;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.GatewayWorker;

/// <summary>What <see cref="GatewayWorkerExtensions.AddGatewayWorker{TApplication}"/> returns: the application's own additions.</summary>
public sealed class GatewayWorkerBuilder(IServiceCollection services)
{
    public IServiceCollection Services => services;

    /// <summary>
    /// The application's versioned SQL scripts: the embedded resources <c>Migrations/*.sql</c> of
    /// <paramref name="assembly"/> (in the project file: <c>&lt;EmbeddedResource Include="Migrations\*.sql" /&gt;</c>),
    /// applied in name order at start-up after the runtime's own, recorded in <paramref name="journalTable"/>.
    /// </summary>
    public GatewayWorkerBuilder AddMigrations(Assembly assembly, string journalTable = "app_schema_versions")
    {
        services.AddSingleton(new MigrationSet(assembly, journalTable));
        return this;
    }
}

public static class GatewayWorkerExtensions
{
    /// <summary>The journal of the runtime's own scripts.</summary>
    public const string JournalTable = "gateway_schema_versions";

    /// <summary>
    /// A gateway worker running <typeparamref name="TApplication"/>: it consumes the hubs' client
    /// events and applies each exactly once and in order per connection, in a PostgreSQL
    /// transaction that also records its replies, published after commit. Reads
    /// <c>ConnectionStrings:rabbitmq</c>, <c>ConnectionStrings:postgres</c> and section <c>Worker</c>.
    /// </summary>
    public static GatewayWorkerBuilder AddGatewayWorker<TApplication>(this WebApplicationBuilder builder)
        where TApplication : class, IGatewayApplication
    {
        var brokerUri = RabbitMqConnection.GetRequiredUri(builder.Configuration);
        var identity = new WorkerIdentity();
        builder.Services.AddSingleton(identity);
        var runtime = builder.AddGatewayRuntime<TApplication>();

        builder.Services.AddHostedService<OutboxSweeper>();
        builder.Services.AddHostedService<HubInstanceReaper>();

        builder.Services.AddOptions<MassTransitHostOptions>().Configure(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromSeconds(60);
            // Graceful stop: in-flight events finish before the process exits.
            o.ConsumerStopTimeout = TimeSpan.FromSeconds(20);
            o.StopTimeout = TimeSpan.FromSeconds(25);
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        builder.Services.AddSingleton<UpstreamConsumerDefinition>();
        builder.Services.AddSingleton(sp => new ShardTopology(brokerUri, sp.GetRequiredService<IOptions<WorkerOptions>>(), sp.GetRequiredService<ILogger<ShardTopology>>()));
        builder.Services.AddSingleton<ShardBalancer>();

        builder.Services.AddMassTransit(x =>
        {
            // Its endpoints are the shard queues this worker holds, connected by the ShardBalancer.
            x.AddConsumer<UpstreamConsumer, UpstreamConsumerDefinition>().ExcludeFromConfigureEndpoints();
            // Every worker hears every heartbeat, of hubs and of workers: a queue of its own, deleted when it goes.
            var heartbeats = $"worker-heartbeats-{Guid.NewGuid():N}";
            x.AddConsumer<HeartbeatConsumer>().Endpoint(e =>
            {
                e.Name = heartbeats;
                e.Temporary = true;
            });
            x.AddConsumer<WorkerHeartbeatConsumer>().Endpoint(e =>
            {
                e.Name = heartbeats;
                e.Temporary = true;
            });
            x.UsingRabbitMq((context, cfg) =>
            {
                cfg.Host(brokerUri, identity.WorkerId, _ => { });
                cfg.ConfigureEndpoints(context);
            });
        });
        // After the bus: started once it runs, and stopped before it, so a graceful stop hands the
        // shards over while the bus can still finish and acknowledge their events.
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ShardBalancer>());

        return runtime;
    }

    /// <summary>
    /// The runtime without the bus: the database (migrated at start-up), the processor that applies
    /// events in order and once, the outbox and <typeparamref name="TApplication"/>. A worker adds
    /// the consumers to it; the bench's in-process baseline hands events to the processor itself.
    /// </summary>
    public static GatewayWorkerBuilder AddGatewayRuntime<TApplication>(this WebApplicationBuilder builder)
        where TApplication : class, IGatewayApplication
    {
        var connectionString = GatewayDatabase.GetRequiredConnectionString(builder.Configuration);

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.TryAddSingleton<WorkerIdentity>();
        builder.Services.AddSingleton(sp => new NpgsqlDataSourceBuilder(connectionString)
            .UseLoggerFactory(sp.GetRequiredService<ILoggerFactory>())
            .Build());
        builder.Services.AddSingleton<GatewayStore>();
        builder.Services.AddSingleton(new MigrationSet(typeof(GatewayWorkerExtensions).Assembly, JournalTable));
        // Registered before the bus, so the schema is current before the first message.
        builder.Services.AddHostedService(sp => new SchemaInitializer(
            connectionString, sp.GetServices<MigrationSet>(), sp.GetRequiredService<ILogger<SchemaInitializer>>()));
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: [ServiceDefaults.Extensions.ReadyTag]);

        builder.Services.AddOptions<WorkerOptions>()
            .BindConfiguration(WorkerOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<WorkerMetrics>();
        builder.Services.AddSingleton<HubInstances>();
        builder.Services.AddSingleton<HubSendQueues>();
        builder.Services.AddSingleton<Outbox>();
        builder.Services.AddSingleton<UpstreamEventProcessor>();
        builder.Services.AddSingleton<IGatewayApplication, TApplication>();
        return new GatewayWorkerBuilder(builder.Services);
    }
}
