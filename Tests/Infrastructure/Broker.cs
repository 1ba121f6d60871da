using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using DotNet.Testcontainers.Builders;
using Testcontainers.RabbitMq;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// The one RabbitMQ of a test run: <c>RABBITMQ_URI</c> (with <c>RABBITMQ_MANAGEMENT_URI</c>) when
/// set; else a Testcontainers broker when a Docker engine answers; else a private node of the OS
/// package, started on free ports by <c>scripts/rabbitmq-node</c> with its data in a temp folder.
/// Tests isolate themselves with a virtual host each.
/// </summary>
public sealed class Broker : IAsyncDisposable
{
    private readonly HttpClient _management;
    private readonly Func<ValueTask> _dispose;

    private Broker(Uri amqp, Uri management, string kind, Func<ValueTask> dispose)
    {
        Amqp = amqp;
        Management = management;
        Kind = kind;
        _dispose = dispose;
        var credentials = Uri.UnescapeDataString(management.UserInfo);
        _management = new HttpClient { BaseAddress = new Uri(management.GetLeftPart(UriPartial.Authority) + "/api/") };
        _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
    }

    public Uri Amqp { get; }

    /// <summary>The management API, with credentials (the bench creates its virtual hosts there).</summary>
    public Uri Management { get; }
    public string Kind { get; }

    /// <summary>Set for a private node: what restarts it in place.</summary>
    public string? NodeDirectory { get; private init; }

    public static async Task<Broker> StartAsync()
    {
        var given = Environment.GetEnvironmentVariable("RABBITMQ_URI");
        if (!string.IsNullOrWhiteSpace(given))
        {
            var amqp = new Uri(given);
            var management = Environment.GetEnvironmentVariable("RABBITMQ_MANAGEMENT_URI") is { Length: > 0 } m
                ? new Uri(m)
                : new UriBuilder("http", amqp.Host, 15672) { UserName = amqp.UserInfo.Split(':')[0], Password = amqp.UserInfo.Split(':').ElementAtOrDefault(1) }.Uri;
            return new Broker(amqp, management, "RABBITMQ_URI", () => ValueTask.CompletedTask);
        }

        var container = await TryStartContainerAsync();
        if (container is not null)
        {
            var amqp = new Uri(container.GetConnectionString());
            var management = new UriBuilder("http", container.Hostname, container.GetMappedPublicPort(15672))
            {
                UserName = amqp.UserInfo.Split(':')[0],
                Password = amqp.UserInfo.Split(':')[1],
            }.Uri;
            return new Broker(amqp, management, "Testcontainers", container.DisposeAsync);
        }

        var directory = Path.Combine(Path.GetTempPath(), $"socketstarter-rabbit-{Guid.NewGuid():N}");
        var lines = await RunNodeScriptAsync("start", directory);
        return new Broker(new Uri(lines["AMQP_URI"]), new Uri(lines["MANAGEMENT_URI"]), "private rabbitmq-server node", async () =>
        {
            await RunNodeScriptAsync("stop", directory);
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        })
        { NodeDirectory = directory };
    }

    /// <summary>A virtual host for one test; its URI for services and clients.</summary>
    public async Task<Uri> CreateVirtualHostAsync(string name)
    {
        (await _management.PutAsJsonAsync($"vhosts/{name}", new { })).EnsureSuccessStatusCode();
        var user = Uri.UnescapeDataString(Amqp.UserInfo.Split(':')[0]);
        (await _management.PutAsJsonAsync($"permissions/{name}/{user}", new { configure = ".*", write = ".*", read = ".*" })).EnsureSuccessStatusCode();
        return new UriBuilder(Amqp) { Path = "/" + name }.Uri;
    }

    /// <summary>Deletes a virtual host; the broker closes every connection to it.</summary>
    public async Task DeleteVirtualHostAsync(string name)
    {
        var response = await _management.DeleteAsync($"vhosts/{name}");
        if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
            response.EnsureSuccessStatusCode();
    }

    /// <summary>Sets which queues the test user may consume from in a virtual host (a regular expression), as an operator could.</summary>
    public async Task SetReadPermissionAsync(string vhost, string read)
    {
        var user = Uri.UnescapeDataString(Amqp.UserInfo.Split(':')[0]);
        (await _management.PutAsJsonAsync($"permissions/{vhost}/{user}", new { configure = ".*", write = ".*", read })).EnsureSuccessStatusCode();
    }

    /// <summary>Closes, from the broker's side, every connection of a virtual host that named itself <paramref name="clientName"/>; returns how many.</summary>
    public async Task<int> CloseConnectionsAsync(string vhost, string clientName)
    {
        var connections = (await _management.GetFromJsonAsync<System.Text.Json.JsonElement>($"vhosts/{vhost}/connections?columns=name,user_provided_name"))
            .EnumerateArray()
            .Where(c => c.TryGetProperty("user_provided_name", out var n) && n.GetString() == clientName)
            .Select(c => c.GetProperty("name").GetString()!)
            .ToList();
        foreach (var name in connections)
        {
            var response = await _management.DeleteAsync($"connections/{Uri.EscapeDataString(name)}");
            if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
                response.EnsureSuccessStatusCode();
        }
        return connections.Count;
    }

    /// <summary>Per queue of the virtual host, how many messages were published into it so far (the management API's message_stats.publish).</summary>
    public async Task<IReadOnlyDictionary<string, long>> PublishedCountsAsync(string vhost)
    {
        var queues = await _management.GetFromJsonAsync<System.Text.Json.JsonElement>($"queues/{vhost}");
        return queues.EnumerateArray().ToDictionary(
            q => q.GetProperty("name").GetString()!,
            q => q.TryGetProperty("message_stats", out var stats) && stats.TryGetProperty("publish", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.Number ? n.GetInt64() : 0);
    }

    /// <summary>Deletes a queue with whatever it holds, as an operator could.</summary>
    public async Task DeleteQueueAsync(string vhost, string queue) =>
        (await _management.DeleteAsync($"queues/{vhost}/{Uri.EscapeDataString(queue)}")).EnsureSuccessStatusCode();

    /// <summary>Empties a queue of its ready messages, as an operator could.</summary>
    public async Task PurgeQueueAsync(string vhost, string queue) =>
        (await _management.DeleteAsync($"queues/{vhost}/{Uri.EscapeDataString(queue)}/contents")).EnsureSuccessStatusCode();

    /// <summary>Messages in a queue, ready and unacknowledged, as the management API reports them.</summary>
    public async Task<(long Ready, long Unacknowledged)> QueueDepthAsync(string vhost, string queue)
    {
        var response = await _management.GetAsync($"queues/{vhost}/{Uri.EscapeDataString(queue)}");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
            return (0, 0);
        response.EnsureSuccessStatusCode();
        var json = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        long Read(string p) => json.TryGetProperty(p, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.Number ? v.GetInt64() : 0;
        return (Read("messages_ready"), Read("messages_unacknowledged"));
    }

    /// <summary>
    /// Per queue of the virtual host, the name its single active consumer's connection gave itself
    /// (a worker names its connection after its worker id), as the broker sees it now; null where
    /// no consumer is active. Consumers waiting in line are left out.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, string?>> ActiveConsumersAsync(string vhost)
    {
        var connections = (await _management.GetFromJsonAsync<System.Text.Json.JsonElement>($"connections?columns=name,user_provided_name"))
            .EnumerateArray()
            .Where(c => c.TryGetProperty("user_provided_name", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.String)
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("user_provided_name").GetString()!);
        var queues = await _management.GetFromJsonAsync<System.Text.Json.JsonElement>($"queues/{vhost}");
        var active = new Dictionary<string, string?>();
        foreach (var queue in queues.EnumerateArray())
        {
            var name = queue.GetProperty("name").GetString()!;
            var response = await _management.GetAsync($"queues/{vhost}/{Uri.EscapeDataString(name)}");
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
                continue; // deleted meanwhile (a stopped worker's own heartbeat queue)
            response.EnsureSuccessStatusCode();
            var details = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
            string? holder = null;
            if (details.TryGetProperty("consumer_details", out var consumers))
            {
                foreach (var consumer in consumers.EnumerateArray())
                {
                    var isActive = !consumer.TryGetProperty("active", out var a) || a.ValueKind != System.Text.Json.JsonValueKind.False;
                    if (consumer.TryGetProperty("activity_status", out var status) && status.GetString() == "waiting")
                        isActive = false;
                    // The broker fills channel_details in a moment after the consumer appears ([] until then).
                    if (isActive && consumer.GetProperty("channel_details") is { ValueKind: System.Text.Json.JsonValueKind.Object } channel
                        && channel.TryGetProperty("connection_name", out var c) && c.GetString() is { } connection)
                        holder = connections.GetValueOrDefault(connection, connection);
                }
            }
            active[name] = holder;
        }
        return active;
    }

    /// <summary>
    /// The first message of a queue, left in it (taken and given back), for queues the management
    /// API cannot read: quorum queues with a single active consumer refuse basic.get.
    /// </summary>
    public async Task<(IReadOnlyDictionary<string, string> Headers, string Payload)> PeekByConsumingAsync(string vhost, string queue)
    {
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = new UriBuilder(Amqp) { Path = "/" + vhost }.Uri };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var taken = new TaskCompletionSource<(IReadOnlyDictionary<string, string>, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            var headers = (delivery.BasicProperties.Headers ?? new Dictionary<string, object?>()).ToDictionary(
                h => h.Key, h => h.Value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : Convert.ToString(h.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
            taken.TrySetResult((headers, Encoding.UTF8.GetString(delivery.Body.Span)));
            await channel.BasicNackAsync(delivery.DeliveryTag, multiple: false, requeue: true);
        };
        var tag = await channel.BasicConsumeAsync(queue, autoAck: false, consumerTag: "", noLocal: false, exclusive: false, arguments: null, consumer: consumer);
        var result = await taken.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await channel.BasicCancelAsync(tag);
        return result;
    }

    /// <summary>The first message of a queue, left in it: its headers, as the management API shows them.</summary>
    public async Task<(IReadOnlyDictionary<string, string> Headers, string Payload)> PeekAsync(string vhost, string queue)
    {
        var response = await _management.PostAsJsonAsync($"queues/{vhost}/{Uri.EscapeDataString(queue)}/get",
            new { count = 1, ackmode = "ack_requeue_true", encoding = "auto" });
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"Peeking into {queue}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        var message = (await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).EnumerateArray().Single();
        var headers = new Dictionary<string, string>();
        if (message.GetProperty("properties").TryGetProperty("headers", out var found))
        {
            foreach (var header in found.EnumerateObject())
                headers[header.Name] = header.Value.ValueKind == System.Text.Json.JsonValueKind.String ? header.Value.GetString()! : header.Value.GetRawText();
        }
        return (headers, message.GetProperty("payload").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        _management.Dispose();
        await _dispose();
    }

    private static async Task<RabbitMqContainer?> TryStartContainerAsync()
    {
        try
        {
            // The workers' sharded upstream needs the consistent-hash exchange, which the image ships but does not enable.
            var container = new RabbitMqBuilder("rabbitmq:3.13-management")
                .WithPortBinding(15672, true)
                .WithResourceMapping(File.ReadAllBytes(Path.Combine(RepositoryRoot.Path, "rabbitmq", "enabled_plugins")), "/etc/rabbitmq/enabled_plugins")
                .Build();
            await container.StartAsync();
            return container;
        }
        catch (DockerUnavailableException)
        {
            return null;
        }
    }

    private static async Task<Dictionary<string, string>> RunNodeScriptAsync(string command, string directory)
    {
        var script = Path.Combine(RepositoryRoot.Path, "scripts", "rabbitmq-node");
        var start = new ProcessStartInfo("bash", [script, command, directory])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"scripts/rabbitmq-node {command} failed ({process.ExitCode}): {await stderr}");

        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1]);
    }
}
