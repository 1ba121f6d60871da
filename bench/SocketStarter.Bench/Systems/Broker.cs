using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;

namespace SocketStarter.Bench.Systems;

/// <summary>
/// The RabbitMQ of a bench run: one given by <c>--rabbitmq</c>, else a private node started by
/// <c>scripts/rabbitmq-node</c> (stopped at the end). Every target run gets its own virtual host,
/// so nothing one run left in a queue reaches the next.
/// </summary>
public sealed class Broker : IAsyncDisposable
{
    private readonly HttpClient _management;
    private readonly Func<Task> _stop;

    private Broker(Uri amqp, Uri management, Func<Task> stop, string? processMarker = null)
    {
        Amqp = amqp;
        ProcessMarker = processMarker;
        _stop = stop;
        var credentials = Uri.UnescapeDataString(management.UserInfo is { Length: > 0 } u ? u : amqp.UserInfo);
        _management = new HttpClient { BaseAddress = new Uri(management.GetLeftPart(UriPartial.Authority) + "/api/"), Timeout = TimeSpan.FromSeconds(30) };
        _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
    }

    public Uri Amqp { get; }

    /// <summary>What the private node's command line contains (its folder), to count its CPU; null for a given broker.</summary>
    public string? ProcessMarker { get; }

    public static async Task<Broker> StartAsync(Uri? given, Uri? givenManagement, string runDirectory)
    {
        if (given is not null)
        {
            var management = givenManagement ?? new UriBuilder("http", given.Host, 15672) { UserName = "guest", Password = "guest" }.Uri;
            return new Broker(new UriBuilder(given) { Path = "/" }.Uri, management, () => Task.CompletedTask);
        }

        var directory = Path.Combine(runDirectory, "rabbitmq");
        Console.WriteLine($"Starting a private RabbitMQ node in {directory}");
        var lines = await NodeScriptAsync("start", directory);
        return new Broker(new Uri(lines["AMQP_URI"]), new Uri(lines["MANAGEMENT_URI"]), async () =>
        {
            await NodeScriptAsync("stop", directory);
            // The node's data is of no use after the run; its log stays with the services' logs.
            try { Directory.Delete(Path.Combine(directory, "mnesia"), recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }, directory);
    }

    public async Task<Uri> CreateVirtualHostAsync(string name)
    {
        (await _management.PutAsJsonAsync($"vhosts/{name}", new { })).EnsureSuccessStatusCode();
        var user = Uri.UnescapeDataString(Amqp.UserInfo.Split(':')[0]);
        (await _management.PutAsJsonAsync($"permissions/{name}/{user}", new { configure = ".*", write = ".*", read = ".*" })).EnsureSuccessStatusCode();
        return new UriBuilder(Amqp) { Path = "/" + name }.Uri;
    }

    public async Task DeleteVirtualHostAsync(string name)
    {
        var response = await _management.DeleteAsync($"vhosts/{name}");
        if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
            response.EnsureSuccessStatusCode();
    }

    public async ValueTask DisposeAsync()
    {
        _management.Dispose();
        await _stop();
    }

    private static async Task<Dictionary<string, string>> NodeScriptAsync(string command, string directory)
    {
        var script = Path.Combine(Repository.Root, "scripts", "rabbitmq-node");
        var start = new ProcessStartInfo("bash", [script, command, directory]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new BenchException($"scripts/rabbitmq-node {command} failed ({process.ExitCode}): {await stderr}");
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
    }
}
