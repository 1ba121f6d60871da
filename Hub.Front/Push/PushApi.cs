using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using SocketStarter.Messages;

namespace SocketStarter.HubFront.Push;

/// <summary>
/// The HTTP push API, shaped like Azure SignalR's REST API (<c>/api/v1/hubs/{hub}/...</c>) with the
/// one hub this gateway has, <c>gateway</c>. Every endpoint publishes the downstream command the
/// workers use, so it reaches clients on every hub instance; none acts on local connections only.
/// </summary>
public static partial class PushApi
{
    public const string Prefix = "/api/v1/hubs/gateway";
    private const int MaxIdLength = 256;
    private const int MaxReasonLength = 512;
    private static readonly JsonElement JsonNull = JsonDocument.Parse("null").RootElement.Clone();

    public static WebApplicationBuilder AddPushApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<PushApiOptions>()
            .BindConfiguration(PushApiOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<PushPublisher>();
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        return builder;
    }

    public static WebApplication MapPushApi(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<PushApiOptions>>().Value;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PushApi));
        if (!options.Enabled)
        {
            LogDisabled(logger);
            return app;
        }

        app.MapOpenApi();
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey!));
        var api = app.MapGroup(Prefix)
            .WithTags("push")
            .AddEndpointFilter(async (context, next) =>
                HasKey(context.HttpContext.Request, expected) ? await next(context) : Unauthorized(context.HttpContext))
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        api.MapPost("/:send", async (HttpContext http, [FromQuery] string[]? excluded, PushPublisher publisher) =>
            await SendAsync<SendToAll>(http, publisher, () => Ids(excluded, "excluded"),
                e => new SendToAll { Type = e.Type, Payload = e.Payload!.Value, ExceptConnectionIds = NullIfEmpty(excluded) }))
            .AcceptsEvent()
            .WithName("SendToAll").WithSummary("Send an event to every connection (except the excluded ones).");

        api.MapPost("/users/{user}/:send", async (HttpContext http, string user, PushPublisher publisher) =>
            await SendAsync<SendToUser>(http, publisher, () => Id(user, "user"),
                e => new SendToUser { UserId = user, Type = e.Type, Payload = e.Payload!.Value }))
            .AcceptsEvent()
            .WithName("SendToUser").WithSummary("Send an event to every connection of an authenticated user (the JWT's user id claim).");

        api.MapPost("/groups/{group}/:send", async (HttpContext http, string group, [FromQuery] string[]? excluded, PushPublisher publisher) =>
            await SendAsync<SendToGroup>(http, publisher, () => Id(group, "group") ?? Ids(excluded, "excluded"),
                e => new SendToGroup { Group = group, Type = e.Type, Payload = e.Payload!.Value, ExceptConnectionIds = NullIfEmpty(excluded) }))
            .AcceptsEvent()
            .WithName("SendToGroup").WithSummary("Send an event to every connection in a group (except the excluded ones).");

        api.MapPost("/connections/{connectionId}/:send", async (HttpContext http, string connectionId, PushPublisher publisher) =>
            await SendAsync<SendToConnections>(http, publisher, () => Id(connectionId, "connectionId"),
                e => new SendToConnections { ConnectionIds = [connectionId], Type = e.Type, Payload = e.Payload!.Value }))
            .AcceptsEvent()
            .WithName("SendToConnection").WithSummary("Send an event to one connection, on whichever instance holds it.");

        api.MapPut("/groups/{group}/connections/{connectionId}", async (string group, string connectionId, PushPublisher publisher, CancellationToken ct) =>
            Id(group, "group") ?? Id(connectionId, "connectionId")
                ?? await publisher.PublishAsync(new AddToGroup { Group = group, ConnectionId = connectionId }, ct))
            .Produces(StatusCodes.Status202Accepted).ProducesValidationProblem()
            .WithName("AddConnectionToGroup").WithSummary("Add a connection to a group.");

        api.MapDelete("/groups/{group}/connections/{connectionId}", async (string group, string connectionId, PushPublisher publisher, CancellationToken ct) =>
            Id(group, "group") ?? Id(connectionId, "connectionId")
                ?? await publisher.PublishAsync(new RemoveFromGroup { Group = group, ConnectionId = connectionId }, ct))
            .Produces(StatusCodes.Status202Accepted).ProducesValidationProblem()
            .WithName("RemoveConnectionFromGroup").WithSummary("Remove a connection from a group.");

        api.MapDelete("/connections/{connectionId}", async (string connectionId, string? reason, PushPublisher publisher, CancellationToken ct) =>
            Id(connectionId, "connectionId") ?? Reason(reason)
                ?? await publisher.PublishAsync(new CloseConnection { ConnectionId = connectionId, Reason = reason ?? "closed by the server" }, ct))
            .Produces(StatusCodes.Status202Accepted).ProducesValidationProblem()
            .WithName("CloseConnection").WithSummary("Close a connection; the client receives Closing(reason) first.");

        LogEnabled(logger, Prefix, options.MaxBodyBytes);
        return app;
    }

    private static RouteHandlerBuilder AcceptsEvent(this RouteHandlerBuilder endpoint) => endpoint
        .Accepts<PushEvent>("application/json")
        .Produces(StatusCodes.Status202Accepted)
        .ProducesValidationProblem()
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

    private static async Task<IResult> SendAsync<T>(HttpContext http, PushPublisher publisher, Func<IResult?> validateRoute, Func<PushEvent, T> command) where T : class
    {
        var invalid = validateRoute();
        if (invalid is not null)
        {
            publisher.Count<T>("invalid");
            return invalid;
        }

        var (pushEvent, error) = await ReadEventAsync(http);
        if (error is not null)
        {
            publisher.Count<T>("invalid");
            return error;
        }
        return await publisher.PublishAsync(command(pushEvent!), http.RequestAborted);
    }

    /// <summary>Reads and checks <c>{ "type": "...", "payload": ... }</c>, naming the field at fault.</summary>
    private static async Task<(PushEvent?, IResult?)> ReadEventAsync(HttpContext http)
    {
        var request = http.Request;
        var limit = http.RequestServices.GetRequiredService<IOptions<PushApiOptions>>().Value.MaxBodyBytes;
        var maxPayload = http.RequestServices.GetRequiredService<IOptions<GatewayOptions>>().Value.MaxPayloadBytes;

        if (!request.HasJsonContentType())
            return (null, TypedResults.Problem("The body must be JSON (Content-Type: application/json).", statusCode: StatusCodes.Status415UnsupportedMediaType, title: "unsupported_media_type"));
        if (request.ContentLength > limit)
            return (null, TooLarge($"The body is {request.ContentLength} bytes; the limit is {limit} (PushApi:MaxBodyBytes)."));

        // Also bounds bodies without a Content-Length (chunked), which Kestrel then stops at the limit.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = limit;

        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, cancellationToken: http.RequestAborted);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge($"The body is over the limit of {limit} bytes (PushApi:MaxBodyBytes)."));
        }
        catch (JsonException ex)
        {
            return (null, Invalid("body", $"The body is not valid JSON ({ex.Message})."));
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return (null, Invalid("body", "The body must be a JSON object: { \"type\": string, \"payload\": any JSON }."));

            foreach (var property in root.EnumerateObject())
            {
                if (property.Name is not ("type" or "payload"))
                    return (null, Invalid(property.Name, $"Unknown member '{property.Name}'; the body has only 'type' and 'payload'."));
            }

            if (!root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                return (null, Invalid("type", "'type' is required and must be a string."));
            var typeName = type.GetString()!;
            if (!UpstreamGateway.TypePattern().IsMatch(typeName))
                return (null, Invalid("type", "'type' must start with a letter and hold 1-64 letters, digits, '.', '_', ':' or '-'."));

            var payload = root.TryGetProperty("payload", out var p) ? p.Clone() : JsonNull;
            var payloadBytes = Encoding.UTF8.GetByteCount(payload.GetRawText());
            if (payloadBytes > maxPayload)
                return (null, TooLarge($"'payload' is {payloadBytes} bytes; the limit is {maxPayload} (Gateway:MaxPayloadBytes)."));

            return (new PushEvent(typeName, payload), null);
        }
    }

    private static bool HasKey(HttpRequest request, byte[] expected)
    {
        string? presented = null;
        if (request.Headers.Authorization.ToString() is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            presented = header["Bearer ".Length..].Trim();
        else if (request.Headers["X-Api-Key"].ToString() is { Length: > 0 } key)
            presented = key;
        if (presented is null)
            return false;

        // Hashes have one length, so the comparison's time says nothing about the key.
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), expected);
    }

    private static ProblemHttpResult Unauthorized(HttpContext http)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return TypedResults.Problem("Missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-Api-Key: KEY' with the key configured as PushApi:ApiKey.",
            statusCode: StatusCodes.Status401Unauthorized, title: "unauthorized");
    }

    private static IResult? Id(string value, string field) =>
        string.IsNullOrWhiteSpace(value) || value.Length > MaxIdLength || value.Any(char.IsControl)
            ? Invalid(field, $"'{field}' must be 1-{MaxIdLength} characters without control characters.")
            : null;

    private static IResult? Ids(string[]? values, string field) =>
        (values ?? []).Select(v => Id(v, field)).FirstOrDefault(e => e is not null);

    private static IResult? Reason(string? reason) =>
        reason is not null && (reason.Length > MaxReasonLength || reason.Any(char.IsControl))
            ? Invalid("reason", $"'reason' must be at most {MaxReasonLength} characters without control characters.")
            : null;

    private static IReadOnlyList<string>? NullIfEmpty(string[]? values) => values is { Length: > 0 } ? values : null;

    private static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, detail: message, title: "invalid_request");

    private static ProblemHttpResult TooLarge(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status413PayloadTooLarge, title: "payload_too_large");

    [LoggerMessage(LogLevel.Information, "Push API disabled: no PushApi:ApiKey configured (its endpoints answer 404)")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(LogLevel.Information, "Push API on {Prefix}, API key required, bodies up to {MaxBodyBytes} bytes")]
    private static partial void LogEnabled(ILogger logger, string prefix, int maxBodyBytes);
}
