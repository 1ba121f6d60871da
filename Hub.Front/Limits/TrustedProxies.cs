using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront.Limits;

/// <summary>
/// The load balancers whose <c>X-Forwarded-For</c> the hub believes, section <c>ForwardedHeaders</c>.
/// Only their word counts: the header from anyone else is ignored, since a client that could set it
/// would choose the address it is counted against. Off (the peer's address counts) when none is listed.
/// </summary>
public sealed class TrustedProxiesOptions : IValidatableObject
{
    public const string Section = "ForwardedHeaders";

    /// <summary>Proxy addresses, e.g. <c>10.0.0.5</c>.</summary>
    public List<string> KnownProxies { get; set; } = [];

    /// <summary>Proxy networks in CIDR notation, e.g. <c>10.0.0.0/24</c>.</summary>
    public List<string> KnownNetworks { get; set; } = [];

    public bool Enabled => KnownProxies.Count > 0 || KnownNetworks.Count > 0;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var proxy in KnownProxies.Where(p => !IPAddress.TryParse(p, out _)))
            yield return new($"{Section}:KnownProxies: '{proxy}' is not an IP address.");
        foreach (var network in KnownNetworks.Where(n => !System.Net.IPNetwork.TryParse(n, out _)))
            yield return new($"{Section}:KnownNetworks: '{network}' is not a network in CIDR notation (10.0.0.0/24).");
    }
}

public static class TrustedProxies
{
    public static WebApplicationBuilder AddTrustedProxies(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<TrustedProxiesOptions>()
            .BindConfiguration(TrustedProxiesOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddOptions<ForwardedHeadersOptions>()
            .Configure<IOptions<TrustedProxiesOptions>>((forwarded, trusted) =>
            {
                forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
                // Not even loopback by default: only what is listed.
                forwarded.KnownProxies.Clear();
                forwarded.KnownIPNetworks.Clear();
                foreach (var proxy in trusted.Value.KnownProxies)
                    forwarded.KnownProxies.Add(IPAddress.Parse(proxy));
                foreach (var network in trusted.Value.KnownNetworks)
                    forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
            });
        return builder;
    }

    public static WebApplication UseTrustedProxies(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<TrustedProxiesOptions>>().Value.Enabled)
            app.UseForwardedHeaders();
        return app;
    }
}
