using MassTransit;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using SocketStarter.HubFront.Auth;
using SocketStarter.HubFront.Consumers;
using SocketStarter.HubFront.Limits;
using SocketStarter.HubFront.Push;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.HubFront;

public static class Extensions
{
    // How long an instance's command queue outlives its last consumer: through a broker restart or a
    // reconnect, and not much longer once the instance is gone for good.
    private static readonly TimeSpan InstanceQueueExpiry = TimeSpan.FromMinutes(2);

    /// <summary>The SignalR hub, its broker connection and the per-instance command queue.</summary>
    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        var brokerUri = RabbitMqConnection.GetRequiredUri(builder.Configuration);

        builder.Services.AddOptions<GatewayOptions>()
            .BindConfiguration(GatewayOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddOptions<LimitsOptions>()
            .BindConfiguration(LimitsOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<ConnectionLimits>();
        builder.AddTrustedProxies();
        builder.AddGatewayAuthentication();
        builder.AddPushApi();

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.Services.AddServiceInstanceId(sp => sp.GetRequiredService<IOptions<GatewayOptions>>().Value.InstanceId);
        builder.Services.AddSingleton<UpstreamPublisher>();
        builder.Services.AddSingleton<UpstreamGateway>();
        builder.Services.AddSingleton<ConnectionCloser>();
        builder.Services.AddSingleton<ClientSends>();
        builder.Services.AddSingleton<OrderFence>();
        builder.Services.AddHostedService<HeartbeatService>();

        builder.Services.AddSignalR();
        builder.Services.AddOptions<HubOptions>()
            .Configure<IOptions<GatewayOptions>>((hub, gateway) => hub.MaximumReceiveMessageSize = gateway.Value.MaxFrameBytes);

        builder.Services.AddOptions<MassTransitHostOptions>().Configure(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromSeconds(60);
            o.StopTimeout = TimeSpan.FromSeconds(30);
        });

        // On SIGTERM the hub closes its sockets at once (clients reconnect to another instance),
        // then reports every closed connection to the workers before the bus stops. A
        // deployment's termination grace period must be longer (deploy/kubernetes/hub.yaml).
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(45));

        builder.Services.AddMassTransit(x =>
        {
            x.AddConsumer<GatewayCommandsConsumer>();
            x.UsingRabbitMq((context, cfg) =>
            {
                var gateway = context.GetRequiredService<IOptions<GatewayOptions>>().Value;
                cfg.Host(brokerUri);

                // Every instance has its own queue and fanout exchange: bound under the command
                // exchanges (fanout: broadcasts, pushes) and under the instances' direct exchange by
                // its id (commands for its connections and groups). Durable, so that a broker restart
                // keeps it, its bindings and what waits in it: a worker that reconnects before this
                // hub does must not publish into nothing. Gone a while after the instance is.
                cfg.ReceiveEndpoint(CommandRouting.InstanceEndpoint(gateway.InstanceId), e =>
                {
                    e.AutoDelete = false;
                    e.Durable = true;
                    e.QueueExpiration = InstanceQueueExpiry;
                    e.Bind(CommandRouting.InstancesExchange, b =>
                    {
                        b.ExchangeType = RabbitMQ.Client.ExchangeType.Direct;
                        b.RoutingKey = gateway.InstanceId;
                    });
                    // One at a time: commands to a connection are applied in the order workers sent them.
                    e.ConcurrentMessageLimit = 1;
                    e.PrefetchCount = 256;
                    e.ConfigureConsumer<GatewayCommandsConsumer>(context);
                });
            });
        });

        return builder;
    }

    public static WebApplication MapGateway(this WebApplication app)
    {
        app.UseTrustedProxies();
        var gateway = app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value;
        app.MapHub<GatewayHub>(GatewayHub.Path, o =>
            {
                o.TransportSendTimeout = gateway.SlowClientTimeout;
                o.Transports = HttpTransportType.WebSockets | HttpTransportType.ServerSentEvents | HttpTransportType.LongPolling;
                // A client that negotiates and asks for it keeps its connection through a short
                // network blip: both sides buffer and replay, on the same instance. Clients that
                // skip negotiation (no sticky sessions) resume their session instead.
                o.AllowStatefulReconnects = true;
            })
            .RequireGatewayAuthentication(app);
        app.MapPushApi();
        return app;
    }
}
