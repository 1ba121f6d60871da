using SocketStarter.GatewayWorker;

namespace SocketStarter.Tests.Gateway;

/// <summary>When an event may be applied, given the connection's last applied seq.</summary>
public sealed class Sequencing
{
    [TestCase(0, 1, new long[0], ExpectedResult = true)]
    [TestCase(4, 5, new long[0], ExpectedResult = true)]
    [TestCase(4, 6, new long[0], ExpectedResult = false)]
    [TestCase(4, 6, new long[] { 5 }, ExpectedResult = true)]
    [TestCase(4, 8, new long[] { 5, 7 }, ExpectedResult = false)]
    [TestCase(4, 8, new long[] { 5, 6, 7 }, ExpectedResult = true)]
    [TestCase(6, 8, new long[] { 5, 7 }, ExpectedResult = true)]
    public bool An_event_follows_directly_when_every_seq_in_between_was_voided(long lastApplied, long seq, long[] voided) =>
        new UpstreamEvent("c", "h", seq, voided, IsLast: false).FollowsDirectly(lastApplied);
}
