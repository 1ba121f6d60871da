using System.Collections.Concurrent;
using MassTransit;
using Microsoft.AspNetCore.SignalR;
using SocketStarter.Messages;

namespace SocketStarter.Baseline;

/// <summary>
/// Where Chat.Worker publishes gateway commands to the broker, the monolith applies them to its
/// own connections at once. It stands in for MassTransit's <see cref="IPublishEndpoint"/>, the
/// type the worker's processor and outbox publish through; only plain publishes are used.
/// </summary>
public sealed class SignalRDispatcher(IHubContext<MonolithHub> hub) : IPublishEndpoint
{
    private readonly ConcurrentDictionary<string, HubCallerContext> _connections = new();

    public void Track(HubCallerContext context) => _connections[context.ConnectionId] = context;

    public void Forget(string connectionId) => _connections.TryRemove(connectionId, out _);

    public Task Publish(object message, Type messageType, CancellationToken cancellationToken = default) =>
        DispatchAsync(message, cancellationToken);

    public Task Publish<T>(T message, CancellationToken cancellationToken = default) where T : class =>
        DispatchAsync(message, cancellationToken);

    public Task Publish(object message, CancellationToken cancellationToken = default) =>
        DispatchAsync(message, cancellationToken);

    public Task Publish<T>(T message, IPipe<PublishContext<T>> publishPipe, CancellationToken cancellationToken = default) where T : class =>
        DispatchAsync(message, cancellationToken);

    public Task Publish<T>(T message, IPipe<PublishContext> publishPipe, CancellationToken cancellationToken = default) where T : class =>
        DispatchAsync(message, cancellationToken);

    public Task Publish(object message, IPipe<PublishContext> publishPipe, CancellationToken cancellationToken = default) =>
        DispatchAsync(message, cancellationToken);

    public Task Publish(object message, Type messageType, IPipe<PublishContext> publishPipe, CancellationToken cancellationToken = default) =>
        DispatchAsync(message, cancellationToken);

    public Task Publish<T>(object values, CancellationToken cancellationToken = default) where T : class =>
        throw new NotSupportedException("The monolith dispatches gateway commands only.");

    public Task Publish<T>(object values, IPipe<PublishContext<T>> publishPipe, CancellationToken cancellationToken = default) where T : class =>
        throw new NotSupportedException("The monolith dispatches gateway commands only.");

    public Task Publish<T>(object values, IPipe<PublishContext> publishPipe, CancellationToken cancellationToken = default) where T : class =>
        throw new NotSupportedException("The monolith dispatches gateway commands only.");

    public ConnectHandle ConnectPublishObserver(IPublishObserver observer) =>
        throw new NotSupportedException("The monolith has no publish pipeline to observe.");

    private Task DispatchAsync(object message, CancellationToken cancellationToken) => message switch
    {
        SendToConnections m => hub.Clients.Clients(m.ConnectionIds).SendAsync("Event", m.Type, m.Payload, cancellationToken),
        SendToGroup m => hub.Clients.GroupExcept(m.Group, m.ExceptConnectionIds ?? []).SendAsync("Event", m.Type, m.Payload, cancellationToken),
        SendToUser m => hub.Clients.User(m.UserId).SendAsync("Event", m.Type, m.Payload, cancellationToken),
        SendToAll m => hub.Clients.AllExcept(m.ExceptConnectionIds ?? []).SendAsync("Event", m.Type, m.Payload, cancellationToken),
        AddToGroup m => hub.Groups.AddToGroupAsync(m.ConnectionId, m.Group, cancellationToken),
        RemoveFromGroup m => hub.Groups.RemoveFromGroupAsync(m.ConnectionId, m.Group, cancellationToken),
        CloseConnection m => CloseAsync(m, cancellationToken),
        _ => throw new NotSupportedException($"The monolith does not dispatch {message.GetType().Name}."),
    };

    private async Task CloseAsync(CloseConnection m, CancellationToken cancellationToken)
    {
        if (!_connections.TryGetValue(m.ConnectionId, out var context))
            return;
        await hub.Clients.Client(m.ConnectionId).SendAsync("Closing", m.Reason, cancellationToken);
        context.Abort();
    }
}
