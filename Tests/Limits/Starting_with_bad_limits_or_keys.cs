using Microsoft.Extensions.Options;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Limits;

public sealed class Starting_with_bad_limits_or_keys
{
    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["ConnectionStrings:rabbitmq"] = "amqp://guest:guest@127.0.0.1:1/",
        ["Gateway:UpstreamExchange"] = "chat-worker",
        ["ConnectionStrings:postgres"] = "Host=127.0.0.1;Port=1;Database=unused;Username=unused;Password=unused",
    };

    [TestCase("Limits:EventsPerSecond", "0", "Limits:EventsPerSecond")]
    [TestCase("Limits:EventBurst", "-5", "Limits:EventBurst")]
    [TestCase("Limits:ViolationsBeforeClose", "0", "Limits:ViolationsBeforeClose")]
    [TestCase("Limits:MaxConnectionsPerAddress", "0", "Limits:MaxConnectionsPerAddress")]
    [TestCase("PushApi:ApiKey", "short", "PushApi:ApiKey")]
    [TestCase("PushApi:ApiKey", "                    ", "PushApi:ApiKey must not be only spaces")]
    [TestCase("PushApi:MaxBodyBytes", "10", "PushApi:MaxBodyBytes")]
    [TestCase("ForwardedHeaders:KnownProxies:0", "lb.internal", "ForwardedHeaders:KnownProxies: 'lb.internal' is not an IP address")]
    [TestCase("ForwardedHeaders:KnownNetworks:0", "10.0.0.0/33", "ForwardedHeaders:KnownNetworks: '10.0.0.0/33'")]
    [TestCase("Auth:SigningKey", "too-short", "Auth:SigningKey")]
    [TestCase("Auth:Authority", "not a url", "Auth:Authority")]
    public void Stops_the_hub_at_start_naming_the_setting(string setting, string value, string expected)
    {
        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(() => TestSystem.BuildHub(new Dictionary<string, string?>(Valid) { [setting] = value })));
        Assert.That(ex!.Message, Does.Contain(expected));
    }

    [Test]
    public void Stops_the_hub_given_both_an_authority_and_a_signing_key()
    {
        var settings = new Dictionary<string, string?>(Valid)
        {
            ["Auth:Authority"] = "https://issuer.test",
            ["Auth:SigningKey"] = "a-test-signing-key-of-at-least-32-bytes",
        };
        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(() => TestSystem.BuildHub(settings)));
        Assert.That(ex!.Message, Does.Contain("either Auth:Authority or Auth:SigningKey"));
    }

    [Test]
    public void Stops_the_worker_given_no_room_at_all()
    {
        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(() => TestSystem.BuildWorker(new Dictionary<string, string?>(Valid) { ["Chat:MaxRoomsPerSession"] = "0" })));
        Assert.That(ex!.Message, Does.Contain("Chat:MaxRoomsPerSession"));
    }

    private static async Task StartAsync(Func<Microsoft.AspNetCore.Builder.WebApplication> build)
    {
        var app = build();
        try
        {
            await app.StartAsync();
            await app.StopAsync();
        }
        finally
        {
            try { await app.DisposeAsync(); }
            catch (OptionsValidationException) { } // disposing resolves the same invalid options again
        }
    }
}
