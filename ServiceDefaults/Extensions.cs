using MassTransit.Logging;
using MassTransit.Monitoring;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace SocketStarter.ServiceDefaults;

/// <summary>What every SocketStarter service has: telemetry, health endpoints, structured logs.</summary>
public static class Extensions
{
    /// <summary>Tag of health checks that must pass before a service takes traffic.</summary>
    public const string ReadyTag = "ready";
    private const string LiveTag = "live";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, params string[] meters)
        where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);

        // OTEL_SERVICE_NAME wins, as everywhere in OpenTelemetry; the instance id tells replicas apart
        // (a container's host name is its id, a pod's its name). A service that has its own
        // notion of instance says so with AddServiceInstanceId.
        var serviceName = builder.Configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : builder.Environment.ApplicationName;
        var instanceId = $"{Environment.MachineName}-{Environment.ProcessId}";
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName, serviceInstanceId: instanceId))
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(InstrumentationOptions.MeterName)
                .AddMeter(meters)
                .AddPrometheusExporter())
            .WithTracing(tracing => tracing
                .AddSource(DiagnosticHeaders.DefaultListenerName)
                // Also SignalR's hub invocation spans: the trace a client starts with a hub call goes
                // on through the broker into the workers and back (Tracing_a_client_event).
                .AddAspNetCoreInstrumentation(o => o.Filter = ctx => !IsInfrastructurePath(ctx.Request.Path)));

        // OTLP export switches on when a collector is configured, as in eShop.
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
            otel.UseOtlpExporter();

        return builder;
    }

    /// <summary>
    /// Sets the resource attribute <c>service.instance.id</c> of every metric and span to the
    /// service's own instance id, read once the options are bound.
    /// </summary>
    public static IServiceCollection AddServiceInstanceId(this IServiceCollection services, Func<IServiceProvider, string> instanceId)
    {
        services.AddOpenTelemetry().ConfigureResource(resource =>
            resource.AddDetector(sp => new InstanceIdDetector(instanceId(sp))));
        return services;
    }

    /// <summary>
    /// <c>/alive</c>: the process answers. <c>/health/ready</c>: every check tagged "ready" passes
    /// (the bus is connected, the store opens). <c>/metrics</c>: Prometheus scrape endpoint.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks("/alive", new HealthCheckOptions { Predicate = r => r.Tags.Contains(LiveTag) });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains(ReadyTag),
            // MassTransit reports a bus without its broker as Degraded, which ASP.NET Core answers
            // with 200: a probe would keep sending traffic to a service that cannot take it.
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        });
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }

    private static bool IsInfrastructurePath(PathString path) =>
        path.StartsWithSegments("/alive") || path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");

    private sealed class InstanceIdDetector(string instanceId) : IResourceDetector
    {
        public Resource Detect() => new([new("service.instance.id", instanceId)]);
    }
}
