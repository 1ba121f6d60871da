using Dapper;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>The README's own app on the runtime (samples/Counter.Worker), behind the same hub, as its own process.</summary>
public sealed class Writing_your_own_app
{
    [Test]
    public async Task The_counter_sample_counts_once_per_event_and_every_client_hears_the_total()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await using var worker = await ServiceProcess.StartAsync("Counter.Worker.dll", system.Settings(), system.Directory);
        var ada = await system.ConnectAsync(hub);
        var bob = await system.ConnectAsync(hub);

        for (var i = 0; i < 5; i++)
            await ada.SendAsync("add", new { by = 2 });
        await bob.SendAsync("add", new { by = 3 });
        var refused = await bob.SendAsync("add", new { by = "three" });

        await ada.WaitForAsync("total", t => t.GetProperty("total").GetInt64() == 13);
        await bob.WaitForAsync("total", t => t.GetProperty("total").GetInt64() == 13);
        var error = await bob.WaitForAsync("error", e => e.GetProperty("seq").GetInt64() == refused);
        await using var database = await system.OpenDatabaseAsync();
        Assert.Multiple(async () =>
        {
            // Six events, six totals, each once (with two senders, the order they are published in is not promised).
            Assert.That(ada.Events("total").Select(t => t.GetProperty("total").GetInt64()).ToList(), Is.Unique.And.Count.EqualTo(6).And.Contains(13L));
            Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("invalid"));
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT total FROM counter"), Is.EqualTo(13));
        });
    }
}
