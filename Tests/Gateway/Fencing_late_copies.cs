using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SocketStarter.HubFront;
using SocketStarter.HubFront.Consumers;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// The hub's rule for a group's commands stamped by an ordered flush (<see cref="OrderFence"/>),
/// on its own; Commands_from_behind_the_gateway and the fault spec
/// A_reply_send_let_go_at_the_publish_timeout show it through a real broker.
/// </summary>
public sealed class Fencing_late_copies
{
    private static readonly TimeSpan Retention = TimeSpan.FromMinutes(10);

    [Test]
    public void An_older_flush_of_a_key_is_dropped_the_same_or_a_newer_one_and_other_keys_pass()
    {
        var fence = new OrderFence(Options.Create(new GatewayOptions { OrderFenceRetention = Retention }), new FakeTimeProvider());

        Assert.Multiple(() =>
        {
            Assert.That(fence.Admit("group:a", 20), Is.True, "first seen");
            Assert.That(fence.Admit("group:a", 20), Is.True, "the same flush's next command");
            Assert.That(fence.Admit("group:a", 19), Is.False, "an older flush, after a newer one");
            Assert.That(fence.Admit("group:b", 5), Is.True, "another key has its own numbers");
            Assert.That(fence.Admit("group:a", 21), Is.True, "a newer flush");
            Assert.That(fence.Admit("group:a", 20), Is.False, "the flush before it, now late");
        });
    }

    [Test]
    public void A_key_not_seen_for_Gateway_OrderFenceRetention_is_forgotten()
    {
        var time = new FakeTimeProvider();
        var fence = new OrderFence(Options.Create(new GatewayOptions { OrderFenceRetention = Retention }), time);
        fence.Admit("group:a", 20);

        time.Advance(Retention - TimeSpan.FromSeconds(1));
        Assert.That(fence.Admit("group:a", 10), Is.False, "still remembered just before the retention ends");

        time.Advance(Retention + TimeSpan.FromSeconds(1));
        Assert.That(fence.Admit("group:a", 10), Is.True, "forgotten after it: a copy this late passes");
    }
}
