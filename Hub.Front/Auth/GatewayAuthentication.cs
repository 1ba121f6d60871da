using System.Text;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace SocketStarter.HubFront.Auth;

/// <summary>Optional JWT bearer authentication for hub clients; demo mode (anonymous) when not configured.</summary>
public static partial class GatewayAuthentication
{
    public const string Policy = "gateway-clients";

    public static WebApplicationBuilder AddGatewayAuthentication(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>()
            .BindConfiguration(AuthOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        var auth = builder.Configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        if (!auth.Enabled)
            return builder;

        builder.Services.AddSingleton<IUserIdProvider, ClaimUserIdProvider>();
        builder.Services.AddAuthentication()
            .AddJwtBearer(o =>
            {
                // Claims keep their JWT names ("sub", "name"): the configured claim names are the ones in the token.
                o.MapInboundClaims = false;
                o.RequireHttpsMetadata = auth.RequireHttpsMetadata;
                if (!string.IsNullOrWhiteSpace(auth.Authority))
                    o.Authority = auth.Authority;
                o.TokenValidationParameters = new TokenValidationParameters
                {
                    NameClaimType = auth.NameClaim,
                    ValidateIssuer = !string.IsNullOrWhiteSpace(auth.Issuer) || !string.IsNullOrWhiteSpace(auth.Authority),
                    ValidIssuer = string.IsNullOrWhiteSpace(auth.Issuer) ? null : auth.Issuer,
                    ValidateAudience = !string.IsNullOrWhiteSpace(auth.Audience),
                    ValidAudience = string.IsNullOrWhiteSpace(auth.Audience) ? null : auth.Audience,
                    ValidateLifetime = true,
                };
                if (!string.IsNullOrWhiteSpace(auth.SigningKey))
                {
                    o.TokenValidationParameters.IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(auth.SigningKey));
                    o.TokenValidationParameters.ValidAlgorithms = [SecurityAlgorithms.HmacSha256];
                }
                o.Events = new JwtBearerEvents
                {
                    // Browsers cannot set headers on a WebSocket: the SignalR client sends the token in the query string.
                    OnMessageReceived = context =>
                    {
                        // Only hub clients present JWTs; elsewhere a bearer is something else (the push API's key),
                        // and reading it as a JWT would log a failed authentication on every push.
                        if (!context.HttpContext.Request.Path.StartsWithSegments(GatewayHub.Path))
                            context.NoResult();
                        else if (context.Request.Query["access_token"] is { Count: > 0 } token)
                            context.Token = token;
                        return Task.CompletedTask;
                    },
                };
            });
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(Policy, p => p
                .AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser()
                .RequireClaim(auth.UserIdClaim));
        return builder;
    }

    /// <summary>Refuses anonymous connections when authentication is configured; says which mode runs.</summary>
    public static HubEndpointConventionBuilder RequireGatewayAuthentication(this HubEndpointConventionBuilder hub, WebApplication app)
    {
        var auth = app.Services.GetRequiredService<IOptions<AuthOptions>>().Value;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(GatewayAuthentication));
        if (!auth.Enabled)
        {
            LogDemoMode(logger);
            return hub;
        }

        LogAuthenticated(logger, string.IsNullOrWhiteSpace(auth.Authority) ? "a shared signing key" : auth.Authority, auth.UserIdClaim, auth.NameClaim);
        hub.RequireAuthorization(Policy);
        return hub;
    }

    [LoggerMessage(LogLevel.Warning, "Demo mode: hub clients are anonymous (no Auth:Authority or Auth:SigningKey configured); anyone can connect and choose any name")]
    private static partial void LogDemoMode(ILogger logger);

    [LoggerMessage(LogLevel.Information, "Hub clients must present a JWT signed by {Issuer}; user id from claim {UserIdClaim}, name from claim {NameClaim}")]
    private static partial void LogAuthenticated(ILogger logger, string issuer, string userIdClaim, string nameClaim);

    /// <summary>The user id SignalR addresses SendToUser to, from the configured claim.</summary>
    private sealed class ClaimUserIdProvider(IOptions<AuthOptions> options) : IUserIdProvider
    {
        public string? GetUserId(HubConnectionContext connection) =>
            connection.User.FindFirst(options.Value.UserIdClaim)?.Value;
    }
}
