using MassTransit;
using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront.Push;

/// <summary>
/// Publishes a downstream command exactly as the workers do (to the command's fanout exchange), so
/// it reaches the connections on every hub instance, and returns once the broker confirmed it.
/// </summary>
public sealed partial class PushPublisher(
    IBus bus,
    UpstreamPublisher upstream,
    IOptions<GatewayOptions> options,
    GatewayMetrics metrics,
    ILogger<PushPublisher> logger)
{
    public async Task<IResult> PublishAsync<T>(T command, CancellationToken cancellationToken) where T : class
    {
        if (!upstream.IsAvailable)
            return Unavailable<T>("the broker is not connected; the command was not published. Try again shortly.");

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.PublishTimeout);
        try
        {
            await bus.Publish(command, timeout.Token);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            LogPublishFailed(ex, typeof(T).Name);
            return Unavailable<T>("the broker did not confirm the command. It may still be delivered; do not assume it was, nor that it was not.");
        }

        Count<T>("accepted");
        return TypedResults.Accepted((string?)null);
    }

    public void Count<T>(string outcome) => metrics.PushRequest(typeof(T).Name, outcome);

    private IResult Unavailable<T>(string detail)
    {
        Count<T>("broker_unavailable");
        return TypedResults.Problem(detail, statusCode: StatusCodes.Status503ServiceUnavailable, title: "broker_unavailable");
    }

    [LoggerMessage(LogLevel.Warning, "Push API could not publish {Command}")]
    private partial void LogPublishFailed(Exception exception, string command);
}
