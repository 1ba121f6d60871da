using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>A backend calling a hub instance's push API over real HTTP.</summary>
public sealed class PushClient(Uri hubUrl, string? apiKey) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri(hubUrl, "/"), Timeout = TimeSpan.FromSeconds(30) };

    public static string Path(string relative) => $"api/v1/hubs/gateway{relative}";

    public static string Segment(string value) => Uri.EscapeDataString(value);

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string relative, string? json = null, Action<HttpRequestMessage>? configure = null)
    {
        var request = new HttpRequestMessage(method, Path(relative));
        if (json is not null)
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        if (apiKey is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        configure?.Invoke(request);
        return _http.SendAsync(request);
    }

    public Task<HttpResponseMessage> PostEventAsync(string relative, string type, object? payload) =>
        SendAsync(HttpMethod.Post, relative, JsonSerializer.Serialize(new { type, payload }));

    /// <summary>Sends and insists on 202 Accepted, showing the body otherwise.</summary>
    public async Task AcceptedAsync(Task<HttpResponseMessage> sending)
    {
        using var response = await sending;
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted), await response.Content.ReadAsStringAsync());
    }

    public Task<HttpResponseMessage> GetAsync(string absolutePath) => _http.GetAsync(absolutePath.TrimStart('/'));

    public static async Task<JsonElement> ProblemAsync(HttpResponseMessage response) =>
        await response.Content.ReadFromJsonAsync<JsonElement>();

    public void Dispose() => _http.Dispose();
}
