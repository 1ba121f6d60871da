using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SocketStarter.GatewayWorker;
using SocketStarter.ChatWorker;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Operations;

/// <summary>deploy/kubernetes/ read as Kubernetes would, checked against what the code really does.</summary>
public sealed class The_kubernetes_manifests
{
    private static readonly string Folder = Path.Combine(RepositoryRoot.Path, "deploy", "kubernetes");

    private static readonly Dictionary<string, string?> Settings = new()
    {
        // Building the services reads their settings; nothing connects.
        ["ConnectionStrings:rabbitmq"] = "amqp://guest:guest@127.0.0.1:5672/",
        ["Gateway:UpstreamExchange"] = "chat-worker",
        ["Store:Path"] = Path.Combine(Path.GetTempPath(), "unused.db"),
        ["ConnectionStrings:postgres"] = "Host=127.0.0.1;Database=unused;Username=unused",
    };

    private static List<(string File, JsonObject Document)> Manifests() =>
        Directory.GetFiles(Folder, "*.yaml").Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .SelectMany(f => Yaml.Documents(File.ReadAllText(f)).Select(d => (Path.GetFileName(f), d)))
            .ToList();

    private static JsonObject Find(string kind, string name) =>
        Manifests().Select(m => m.Document).SingleOrDefault(d => d["kind"].Text() == kind && d["metadata"]?["name"].Text() == name)
        ?? throw new AssertionException($"deploy/kubernetes has no {kind} named {name}");

    private static JsonObject Container(JsonObject workload) =>
        workload["spec"]!["template"]!["spec"]!["containers"].Items().Single().AsObject();

    private static string? Env(JsonObject container, string name) =>
        container["env"].Items().FirstOrDefault(e => e["name"].Text() == name)?["value"]?.GetValue<string>();

    /// <summary>The secret and key an environment variable is read from, if it is.</summary>
    private static (string Secret, string Key)? SecretEnv(JsonObject container, string name) =>
        container["env"].Items().FirstOrDefault(e => e["name"].Text() == name)?["valueFrom"]?["secretKeyRef"] is { } reference
            ? (reference["name"].Text(), reference["key"].Text())
            : null;

    [Test]
    public void Are_all_well_formed_and_listed_in_the_kustomization()
    {
        var manifests = Manifests();
        var kustomization = Yaml.Documents(File.ReadAllText(Path.Combine(Folder, "kustomization.yaml"))).Single();
        var listed = kustomization["resources"].Items().Select(r => r.Text()).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(manifests, Is.Not.Empty);
            foreach (var (file, document) in manifests)
            {
                Assert.That(document["apiVersion"].Text(), Is.Not.Empty, $"{file}: apiVersion");
                Assert.That(document["kind"].Text(), Is.Not.Empty, $"{file}: kind");
                Assert.That(document["metadata"]?["name"].Text(), Is.Not.Empty, $"{file}: metadata.name");
            }
            Assert.That(listed, Is.EquivalentTo(manifests.Select(m => m.File).Distinct()), "kustomization.yaml lists every manifest");
        });
    }

    [Test]
    public async Task Probe_the_paths_the_services_really_serve_on_the_port_they_listen_on()
    {
        var paths = new Dictionary<string, IReadOnlyCollection<string>>
        {
            ["hub-front"] = await RoutesAsync(() => TestSystem.BuildHub(Settings)),
            ["chat-worker"] = await RoutesAsync(() => TestSystem.BuildWorker(Settings)),
        };

        Assert.Multiple(() =>
        {
            foreach (var (name, routes) in paths)
            {
                var container = Container(Find("Deployment", name));
                var port = container["ports"].Items().Single(p => p["name"].Text() == "http")["containerPort"].Text();
                Assert.That(port, Is.EqualTo("8080"), $"{name}: the .NET images listen on 8080 (ASPNETCORE_HTTP_PORTS)");
                foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
                {
                    var get = container[probe]?["httpGet"];
                    Assert.That(get, Is.Not.Null, $"{name}: {probe} over HTTP");
                    Assert.That(routes, Does.Contain(get!["path"].Text()), $"{name}: {probe} path is served");
                    Assert.That(get["port"].Text(), Is.EqualTo("http"), $"{name}: {probe} port");
                }
                Assert.That(container["readinessProbe"]!["httpGet"]!["path"].Text(), Is.EqualTo("/health/ready"), $"{name}: readiness means connected");
                Assert.That(container["livenessProbe"]!["httpGet"]!["path"].Text(), Is.EqualTo("/alive"), $"{name}: liveness does not restart a pod for a broker outage");
            }
        });
    }

    [Test]
    public void Scale_workers_with_KEDA_on_the_queue_the_worker_consumes()
    {
        var scaled = Find("ScaledObject", "chat-worker");
        var worker = Find("Deployment", "chat-worker");
        var hub = Container(Find("Deployment", "hub-front"));
        var trigger = scaled["spec"]!["triggers"].Items().Single();
        var consumed = new WorkerOptions().Queue;
        var auth = Find("TriggerAuthentication", trigger["authenticationRef"]!["name"].Text());

        Assert.Multiple(() =>
        {
            Assert.That(scaled["apiVersion"].Text(), Is.EqualTo("keda.sh/v1alpha1"));
            Assert.That(scaled["spec"]!["scaleTargetRef"]!["name"].Text(), Is.EqualTo(worker["metadata"]!["name"].Text()));
            Assert.That(trigger["type"].Text(), Is.EqualTo("rabbitmq"));
            Assert.That(trigger["metadata"]!["mode"].Text(), Is.EqualTo("QueueLength"));
            // Every shard queue, summed: what waits for the workers in all.
            Assert.That(trigger["metadata"]!["useRegex"].Text(), Is.EqualTo("true"));
            Assert.That(trigger["metadata"]!["operation"].Text(), Is.EqualTo("sum"));
            Assert.That(trigger["metadata"]!["protocol"].Text(), Is.EqualTo("http"), "a regex over queue names needs the management API");
            var shards = Enumerable.Range(0, new WorkerOptions().Shards).Select(new WorkerOptions().ShardQueue).ToList();
            Assert.That(shards, Has.All.Matches(new System.Text.RegularExpressions.Regex(trigger["metadata"]!["queueName"].Text())), "the regex takes every shard queue Worker:Queue names by default");
            Assert.That(new System.Text.RegularExpressions.Regex(trigger["metadata"]!["queueName"].Text()).IsMatch(consumed + "-00_error"), Is.False, "but not the error queues");
            Assert.That(int.Parse(scaled["spec"]!["maxReplicaCount"].Text(), System.Globalization.CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(new WorkerOptions().Shards),
                "no more workers than shards: one beyond would hold none");
            Assert.That(Env(Container(worker), "Worker__Queue"), Is.EqualTo(consumed).Or.Null);
            Assert.That(Env(hub, "Gateway__UpstreamExchange"), Is.EqualTo(consumed), "the hubs send where the workers consume");
            Assert.That(int.Parse(scaled["spec"]!["minReplicaCount"].Text(), System.Globalization.CultureInfo.InvariantCulture),
                Is.GreaterThanOrEqualTo(1).And.LessThanOrEqualTo(int.Parse(scaled["spec"]!["maxReplicaCount"].Text(), System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(auth["spec"]!["secretTargetRef"].Items().Select(s => s["parameter"].Text()), Does.Contain("host"));
        });
    }

    [Test]
    public async Task Give_each_service_longer_to_stop_than_it_takes()
    {
        var hub = await ShutdownTimeoutAsync(() => TestSystem.BuildHub(Settings));
        var worker = await ShutdownTimeoutAsync(() => TestSystem.BuildWorker(Settings));
        var hubPod = Find("Deployment", "hub-front")["spec"]!["template"]!["spec"]!;
        var workerPod = Find("Deployment", "chat-worker")["spec"]!["template"]!["spec"]!;
        var preStop = Container(Find("Deployment", "hub-front"))["lifecycle"]?["preStop"]?["exec"]?["command"].Items().Select(c => c.Text()).ToList() ?? [];
        var preStopSeconds = preStop.Count == 2 && preStop[0] == "sleep" ? int.Parse(preStop[1], System.Globalization.CultureInfo.InvariantCulture) : 0;

        Assert.Multiple(() =>
        {
            Assert.That(preStopSeconds, Is.GreaterThan(0), "the hub waits for the Service to stop sending it new clients");
            Assert.That(TimeSpan.FromSeconds(Seconds(hubPod)), Is.GreaterThan(hub + TimeSpan.FromSeconds(preStopSeconds)), "hub: grace period over preStop + shutdown");
            Assert.That(TimeSpan.FromSeconds(Seconds(workerPod)), Is.GreaterThan(worker), "worker: grace period over shutdown");
        });

        static int Seconds(JsonNode pod) => int.Parse(pod["terminationGracePeriodSeconds"].Text(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public void Run_workers_on_any_node_with_their_state_in_PostgreSQL()
    {
        var worker = Find("Deployment", "chat-worker");
        var pod = worker["spec"]!["template"]!["spec"]!;
        var container = Container(worker);

        Assert.Multiple(() =>
        {
            Assert.That(pod["volumes"].Items(), Is.Empty, "workers keep nothing on disk");
            Assert.That(container["volumeMounts"].Items(), Is.Empty);
            Assert.That(pod["affinity"], Is.Null, "no worker is tied to a node or to another worker");
            Assert.That(Manifests().Select(m => m.Document["kind"].Text()), Does.Not.Contain("PersistentVolumeClaim"), "the only claims are the StatefulSets' own");
            Assert.That(SecretEnv(container, "ConnectionStrings__postgres"), Is.EqualTo(("socketstarter-postgres", "connection-string")));
            Assert.That(container["env"].Items().Select(e => e["name"].Text()), Has.None.StartsWith("Store__"), "no SQLite settings any more");
            Assert.That(container["readinessProbe"]?["httpGet"]?["path"].Text(), Is.EqualTo("/health/ready"), "ready includes the database");
        });
    }

    [Test]
    public void Run_one_PostgreSQL_on_its_own_volume_ready_when_it_accepts_connections()
    {
        var postgres = Find("StatefulSet", "postgres");
        var service = Find("Service", postgres["spec"]!["serviceName"].Text());
        var container = Container(postgres);
        var claims = postgres["spec"]!["volumeClaimTemplates"].Items().ToList();
        var readiness = container["readinessProbe"]?["exec"]?["command"].Items().Select(c => c.Text()).ToList() ?? [];
        var labels = postgres["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();

        Assert.Multiple(() =>
        {
            Assert.That(postgres["spec"]!["replicas"].Text(), Is.EqualTo("1"));
            Assert.That(container["image"].Text(), Does.Match("^postgres:(15|17)-alpine$"), "the official image");
            Assert.That(claims.Select(c => c["spec"]!["accessModes"].Items().Select(a => a.Text()).Single()), Is.EqualTo(new[] { "ReadWriteOnce" }));
            Assert.That(container["volumeMounts"].Items().Select(v => v["name"].Text()), Does.Contain(claims.Single()["metadata"]!["name"].Text()), "the data folder is on the claim");
            Assert.That(readiness, Does.Contain("pg_isready"), "ready = the server accepts connections");
            Assert.That(SecretEnv(container, "POSTGRES_PASSWORD"), Is.EqualTo(("socketstarter-postgres", "password")));
            Assert.That(Env(container, "POSTGRES_USER"), Is.EqualTo("socketstarter"));
            Assert.That(Env(container, "POSTGRES_DB"), Is.EqualTo("socketstarter"));
            Assert.That(service["spec"]!["ports"].Items().Select(p => p["port"].Text()), Does.Contain("5432"));
            Assert.That(service["spec"]!["selector"]!.AsObject().Select(l => (l.Key, l.Value.Text())),
                Is.SubsetOf(labels.Select(l => (l.Key, l.Value.Text()))), "the Service selects the server's pod");
        });
    }

    [Test]
    public void Keep_secrets_out_of_the_files()
    {
        var everything = string.Join('\n', Directory.GetFiles(Folder).Select(File.ReadAllText));
        var passwords = Manifests().SelectMany(m => Workloads(m.Document))
            .SelectMany(c => c["env"].Items()).Where(e => e["name"].Text().Contains("PASS", StringComparison.Ordinal)).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(everything, Does.Not.Match("amqp://[^\\s\"]*:[^\\s\"]*@"), "no broker password in a manifest");
            Assert.That(everything, Does.Not.Match("postgres(ql)?://[^\\s\"]*:[^\\s\"]*@"), "no database password in a URI");
            Assert.That(everything, Does.Not.Match("(?im)(^|[;\\s\"'])password\\s*=\\s*[^\\s;\"'$\\\\]"), "no database password in a key=value connection string");
            Assert.That(passwords, Is.Not.Empty);
            Assert.That(passwords.Select(e => e["value"]), Is.All.Null, "every password comes from a Secret");
            Assert.That(Manifests().Select(m => m.Document["kind"].Text()), Does.Not.Contain("Secret"));
        });

        static IEnumerable<JsonNode> Workloads(JsonObject document) =>
            document["spec"]?["template"]?["spec"]?["containers"].Items() ?? [];
    }

    // Each service is built in a flow of its own: MassTransit keeps its log context in an
    // AsyncLocal, which must not outlive the service it came from.
    private static Task<IReadOnlyCollection<string>> RoutesAsync(Func<WebApplication> build) => Task.Run(async () =>
    {
        await using var app = build();
        return (IReadOnlyCollection<string>)((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/')).ToList();
    });

    private static Task<TimeSpan> ShutdownTimeoutAsync(Func<WebApplication> build) => Task.Run(async () =>
    {
        await using var app = build();
        return app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout;
    });
}
