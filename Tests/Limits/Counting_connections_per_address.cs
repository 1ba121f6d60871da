using System.Net;
using SocketStarter.HubFront.Limits;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Limits;

/// <summary>Which connections count against the same per-address limit.</summary>
public sealed class Counting_connections_per_address
{
    [TestCase("203.0.113.7", "203.0.113.7")]
    [TestCase("::ffff:203.0.113.7", "203.0.113.7")]
    [TestCase("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64")]
    [TestCase("2001:db8:1:2::1", "2001:db8:1:2::/64")]
    [TestCase("2001:db8:1:3::1", "2001:db8:1:3::/64")]
    [TestCase("::1", "::/64")]
    public void Counts_IPv4_by_address_and_IPv6_by_its_64_bit_prefix(string address, string key) =>
        Assert.That(ConnectionLimits.AddressKey(IPAddress.Parse(address)), Is.EqualTo(key));

    [Test]
    public void Counts_connections_without_an_address_together() =>
        Assert.That(ConnectionLimits.AddressKey(null), Is.EqualTo("unknown"));

    [Test]
    public async Task Behind_a_trusted_proxy_counts_the_forwarded_client_address()
    {
        await using var system = await TestSystem.CreateAsync();
        var limits = new Dictionary<string, string?> { ["Limits:MaxConnectionsPerAddress"] = "1" };
        var behindProxy = await system.StartHubAsync(new Dictionary<string, string?>(limits)
        {
            ["ForwardedHeaders:KnownProxies:0"] = "127.0.0.1",
            ["ForwardedHeaders:KnownProxies:1"] = "::1",
        });
        var direct = await system.StartHubAsync(limits);
        await system.StartWorkerAsync();

        var ada = await system.ConnectAsync(behindProxy, headers: Forwarded("198.51.100.1"));
        var grace = await system.ConnectAsync(behindProxy, headers: Forwarded("198.51.100.2"));
        var adaAgain = await system.ConnectAsync(behindProxy, headers: Forwarded("198.51.100.1"));
        var first = await system.ConnectAsync(direct, headers: Forwarded("198.51.100.1"));
        var forged = await system.ConnectAsync(direct, headers: Forwarded("198.51.100.2"));
        await Wait.UntilAsync(() => adaAgain.TimesClosed == 1 && forged.TimesClosed == 1, "the connections over the limit are closed");

        foreach (var admitted in new[] { ada, grace, first })
            Assert.DoesNotThrowAsync(() => admitted.SendAsync("ping", null), "admitted");
        Assert.Multiple(() =>
        {
            Assert.That(ada.TimesClosed + grace.TimesClosed + first.TimesClosed, Is.Zero);
            Assert.That(adaAgain.ClosingReason, Does.StartWith("too_many_connections:"));
            Assert.That(forged.ClosingReason, Does.StartWith("too_many_connections:"), "without trusted proxies the header is ignored");
        });
    }

    private static Dictionary<string, string> Forwarded(string address) => new() { ["X-Forwarded-For"] = address };
}
