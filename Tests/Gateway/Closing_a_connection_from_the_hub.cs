using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using SocketStarter.HubFront;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// How the hub closes a connection (an abuse limit, a <c>CloseConnection</c> command): the reason
/// first, then the abort, whatever the client does. On a clock the test moves.
/// </summary>
public sealed class Closing_a_connection_from_the_hub
{
    private FakeTimeProvider _clock = null!;
    private FakeConnection _connection = null!;

    [SetUp]
    public void Create()
    {
        _clock = new FakeTimeProvider();
        _connection = new FakeConnection();
    }

    [Test]
    public async Task Sends_the_reason_then_aborts_after_a_short_grace()
    {
        var client = new FakeClient(_ => Task.CompletedTask);
        var closing = Closer(client).CloseAsync(_connection, "maintenance");

        var abortedAtOnce = _connection.Aborted;
        _clock.Advance(ConnectionCloser.ReasonGrace);
        await closing;

        Assert.Multiple(() =>
        {
            Assert.That(client.Reasons, Is.EqualTo(new[] { "maintenance" }));
            Assert.That(abortedAtOnce, Is.False, "the reason gets a moment to leave");
            Assert.That(_connection.Aborted, Is.True);
        });
    }

    [Test]
    public async Task Aborts_a_client_that_does_not_take_the_reason_in_time()
    {
        var client = new FakeClient(_ => new TaskCompletionSource().Task);
        var closing = Closer(client).CloseAsync(_connection, "maintenance");

        _clock.Advance(ConnectionCloser.ReasonTimeout - TimeSpan.FromMilliseconds(1));
        var abortedEarly = _connection.Aborted;
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        await closing;

        Assert.Multiple(() =>
        {
            Assert.That(abortedEarly, Is.False);
            Assert.That(_connection.Aborted, Is.True);
        });
    }

    [Test]
    public async Task Aborts_when_sending_the_reason_fails_and_does_not_throw()
    {
        var client = new FakeClient(_ => Task.FromException(new IOException("the transport is gone")));

        await Closer(client).CloseAsync(_connection, "maintenance");

        Assert.That(_connection.Aborted, Is.True);
    }

    private ConnectionCloser Closer(FakeClient client) =>
        new(new FakeHubContext(client), _clock, NullLogger<ConnectionCloser>.Instance);

    private sealed class FakeClient(Func<string, Task> closing) : IGatewayClient
    {
        public List<string> Reasons { get; } = [];
        public Task Event(string type, JsonElement payload) => Task.CompletedTask;

        public Task Closing(string reason)
        {
            Reasons.Add(reason);
            return closing(reason);
        }
    }

    private sealed class FakeHubContext(IGatewayClient client) : IHubContext<GatewayHub, IGatewayClient>
    {
        public IHubClients<IGatewayClient> Clients { get; } = new FakeClients(client);
        public IGroupManager Groups => throw new NotSupportedException();
    }

    private sealed class FakeClients(IGatewayClient client) : IHubClients<IGatewayClient>
    {
        public IGatewayClient Client(string connectionId) => client;
        public IGatewayClient All => throw new NotSupportedException();
        public IGatewayClient AllExcept(IReadOnlyList<string> excludedConnectionIds) => throw new NotSupportedException();
        public IGatewayClient Clients(IReadOnlyList<string> connectionIds) => throw new NotSupportedException();
        public IGatewayClient Group(string groupName) => throw new NotSupportedException();
        public IGatewayClient GroupExcept(string groupName, IReadOnlyList<string> excludedConnectionIds) => throw new NotSupportedException();
        public IGatewayClient Groups(IReadOnlyList<string> groupNames) => throw new NotSupportedException();
        public IGatewayClient User(string userId) => throw new NotSupportedException();
        public IGatewayClient Users(IReadOnlyList<string> userIds) => throw new NotSupportedException();
    }

    private sealed class FakeConnection : HubCallerContext
    {
        private int _aborted;
        public bool Aborted => Volatile.Read(ref _aborted) == 1;
        public override string ConnectionId => "connection-1";
        public override string? UserIdentifier => null;
        public override ClaimsPrincipal? User => null;
        public override IDictionary<object, object?> Items { get; } = new Dictionary<object, object?>();
        public override IFeatureCollection Features { get; } = new FeatureCollection();
        public override CancellationToken ConnectionAborted => CancellationToken.None;
        public override void Abort() => Interlocked.Exchange(ref _aborted, 1);
    }
}
