using SocketStarter.ChatWorker.Chat;
using SocketStarter.GatewayWorker;

namespace SocketStarter.ChatWorker;

public static class Extensions
{
    /// <summary>The chat application on the gateway worker runtime, with its tables and limits.</summary>
    public static WebApplicationBuilder AddChatWorker(this WebApplicationBuilder builder)
    {
        builder.AddGatewayWorker<ChatApplication>()
            .AddMigrations(typeof(ChatApplication).Assembly);

        builder.Services.AddOptions<ChatOptions>()
            .BindConfiguration(ChatOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddHostedService<ExpiredSessionSweeper>();
        return builder;
    }
}
