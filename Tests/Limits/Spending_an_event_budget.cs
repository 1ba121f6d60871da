using Microsoft.Extensions.Time.Testing;
using SocketStarter.HubFront.Limits;

namespace SocketStarter.Tests.Limits;

/// <summary>A connection's event budget, on a clock the test moves.</summary>
public sealed class Spending_an_event_budget
{
    private FakeTimeProvider _clock = null!;

    [SetUp]
    public void Create() => _clock = new FakeTimeProvider();

    [Test]
    public void Allows_a_burst_then_refuses_until_time_passes()
    {
        var bucket = new TokenBucket(capacity: 5, tokensPerSecond: 1, _clock);

        var burst = Enumerable.Range(0, 10).Count(_ => bucket.TryTake());
        _clock.Advance(TimeSpan.FromMilliseconds(999));
        var beforeASecond = bucket.TryTake();
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        var afterASecond = bucket.TryTake();

        Assert.Multiple(() =>
        {
            Assert.That(burst, Is.EqualTo(5));
            Assert.That(beforeASecond, Is.False);
            Assert.That(afterASecond, Is.True);
            Assert.That(bucket.TryTake(), Is.False, "one token per second");
        });
    }

    [Test]
    public void Refills_at_the_sustained_rate_up_to_the_burst_only()
    {
        var bucket = new TokenBucket(capacity: 5, tokensPerSecond: 50, _clock);
        while (bucket.TryTake()) { }

        _clock.Advance(TimeSpan.FromMilliseconds(60));
        var afterSixtyMs = Enumerable.Range(0, 10).Count(_ => bucket.TryTake());
        _clock.Advance(TimeSpan.FromHours(1));
        var afterAnHour = Enumerable.Range(0, 10).Count(_ => bucket.TryTake());

        Assert.Multiple(() =>
        {
            Assert.That(afterSixtyMs, Is.EqualTo(3));
            Assert.That(afterAnHour, Is.EqualTo(5));
        });
    }
}
