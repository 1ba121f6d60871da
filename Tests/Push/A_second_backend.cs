using System.Diagnostics;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Push;

/// <summary>samples/Notifier, a separate process that only references Messages/, reaches clients through the hubs.</summary>
public sealed class A_second_backend
{
    [Test]
    public async Task Notifies_a_room_on_every_hub_instance_over_MassTransit()
    {
        await using var system = await TestSystem.CreateAsync();
        var first = await system.StartHubAsync();
        var second = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var ada = await system.ConnectAsAsync(first, "Ada", "lobby");
        var bob = await system.ConnectAsAsync(second, "Bob", "lobby");
        var eve = await system.ConnectAsAsync(second, "Eve", "elsewhere");

        var (exitCode, output) = await RunNotifierAsync(system, "group", "room:lobby", "notice", """{"text":"deploy at six"}""");
        Assert.That(exitCode, Is.Zero, output);
        (exitCode, output) = await RunNotifierAsync(system, "all", "done");
        Assert.That(exitCode, Is.Zero, output);

        foreach (var client in new[] { ada, bob, eve })
            await client.WaitForAsync("done");
        Assert.Multiple(() =>
        {
            Assert.That(ada.Events("notice").Single().GetProperty("text").GetString(), Is.EqualTo("deploy at six"));
            Assert.That(bob.Events("notice"), Has.Count.EqualTo(1));
            Assert.That(eve.Events("notice"), Is.Empty);
        });
    }

    [Test]
    public async Task Explains_its_usage_when_the_arguments_are_wrong()
    {
        await using var system = await TestSystem.CreateAsync();
        var (exitCode, output) = await RunNotifierAsync(system, "group", "g", "notice", "{not json");

        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(output, Does.Contain("not valid JSON").And.Contain("usage:"));
        });
    }

    private static async Task<(int ExitCode, string Output)> RunNotifierAsync(TestSystem system, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Notifier.dll"), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ConnectionStrings__rabbitmq"] = system.BrokerUri.ToString();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"Notifier did not exit within 60 s:\n{await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
