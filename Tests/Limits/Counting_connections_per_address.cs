using System.Net;
using SocketStarter.HubFront.Limits;

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
}
