using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SocketStarter.GatewayWorker;
using SocketStarter.ChatWorker;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Operations;

/// <summary>
/// compose.yaml as Compose itself reads it (<c>docker-compose config</c>: schema, variables,
/// build contexts), then the fields that make it run as intended. No Docker engine is needed.
/// </summary>
public sealed partial class The_compose_file
{
    private static readonly string ComposeFile = Path.Combine(RepositoryRoot.Path, "compose.yaml");
    private const string Password = "0123456789abcdef";
    private const string DatabasePassword = "fedcba9876543210";

    private static Dictionary<string, string> Passwords() => new()
    {
        ["RABBITMQ_PASSWORD"] = Password,
        ["POSTGRES_PASSWORD"] = DatabasePassword,
    };

    [Test]
    public async Task Is_valid_for_Compose()
    {
        var result = await ComposeAsync(Passwords(), "config", "-q");
        Assert.That(result.ExitCode, Is.Zero, $"docker-compose config -q:\n{result.Error}");
    }

    [TestCase("RABBITMQ_PASSWORD")]
    [TestCase("POSTGRES_PASSWORD")]
    public async Task Refuses_to_start_without_a_password_and_names_it(string missing)
    {
        var variables = Passwords();
        variables.Remove(missing);
        var result = await ComposeAsync(variables, "config", "-q");
        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.Not.Zero);
            Assert.That(result.Error, Does.Contain(missing));
        });
    }

    [Test]
    public async Task Gates_every_service_on_health_and_keeps_state_in_named_volumes()
    {
        var raw = Yaml.Documents(await File.ReadAllTextAsync(ComposeFile)).Single();
        var config = await ResolvedAsync();
        var services = config["services"]!.AsObject();

        Assert.Multiple(() =>
        {
            Assert.That(raw.ContainsKey("version"), Is.False, "the Compose specification has no version key");
            foreach (var (name, service) in services)
            {
                var oneShot = service!["restart"].Text() == "no";
                if (!oneShot)
                    Assert.That(service["healthcheck"]?["test"], Is.Not.Null, $"{name} has a health check");
                foreach (var (dependency, condition) in service["depends_on"]?.AsObject() ?? [])
                {
                    var wanted = services[dependency]!["restart"].Text() == "no" ? "service_completed_successfully" : "service_healthy";
                    Assert.That(condition!["condition"].Text(), Is.EqualTo(wanted), $"{name} waits for {dependency}");
                }
            }
            Assert.That(config["volumes"]?.AsObject().Select(v => v.Key), Is.EquivalentTo(new[] { "rabbitmq-data", "postgres-data" }));
            Assert.That(services["rabbitmq"]!["volumes"].Items().Select(v => v.Text()), Has.Some.StartsWith("rabbitmq-data:/var/lib/rabbitmq"));
            Assert.That(services["rabbitmq"]!["image"].Text(), Does.Contain("management"), "the official management image");
        });
    }

    [Test]
    public async Task Keeps_the_workers_state_in_one_PostgreSQL_that_they_wait_for()
    {
        var services = (await ResolvedAsync())["services"]!.AsObject();
        var postgres = services["postgres"]!;
        var worker = services["chat-worker"]!;
        var check = postgres["healthcheck"]?["test"].Items().Select(t => t.Text()).ToList() ?? [];

        Assert.Multiple(() =>
        {
            Assert.That(postgres["image"].Text(), Does.Match("^postgres:(15|17)-alpine$"), "the official image");
            Assert.That(postgres["volumes"].Items().Select(v => v.Text()), Has.Some.StartsWith("postgres-data:/var/lib/postgresql/data"));
            Assert.That(check, Does.Contain("pg_isready"), "healthy = the server accepts connections");
            Assert.That(string.Join(' ', check), Does.Contain("-U socketstarter").And.Contain("-d socketstarter"));
            Assert.That(Env(postgres, "POSTGRES_USER"), Is.EqualTo("socketstarter"));
            Assert.That(Env(postgres, "POSTGRES_DB"), Is.EqualTo("socketstarter"));
            Assert.That(Env(postgres, "POSTGRES_PASSWORD"), Is.EqualTo(DatabasePassword), "the database's password comes from the environment");

            Assert.That(worker["depends_on"]?["postgres"]?["condition"].Text(), Is.EqualTo("service_healthy"), "workers start once the database answers");
            Assert.That(worker["volumes"].Items(), Is.Empty, "workers keep nothing on disk: any number, on any host");
            Assert.That(Env(worker, "Store__Path"), Is.Null, "no SQLite file any more");
            Assert.That(Env(worker, "ConnectionStrings__postgres"), Does.Contain($":{DatabasePassword}@postgres:5432/socketstarter"));
        });
    }

    [Test]
    public async Task Scales_workers_behind_two_hubs_that_a_load_balancer_serves()
    {
        var services = (await ResolvedAsync())["services"]!.AsObject();
        var worker = services["chat-worker"]!;
        var hubs = services.Where(s => s.Value!["build"]?["dockerfile"].Text() == "Hub.Front/Dockerfile").ToList();
        var nginx = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Path, "client", "nginx.conf"));
        var upstreams = UpstreamServer().Matches(nginx).Select(m => m.Groups["host"].Value).ToList();
        var queue = new WorkerOptions().Queue;

        Assert.Multiple(() =>
        {
            // --scale needs replicas the engine can name and place: no fixed name, no host port.
            Assert.That(worker["container_name"], Is.Null);
            Assert.That(worker["ports"], Is.Null);
            Assert.That(Env(worker, "Worker__Queue") ?? queue, Is.EqualTo(queue));

            Assert.That(hubs, Has.Count.EqualTo(2));
            Assert.That(hubs.Select(h => Env(h.Value!, "Gateway__InstanceId")).Distinct().Count(), Is.EqualTo(2), "each hub has its own instance id");
            Assert.That(hubs.Select(h => Env(h.Value!, "Gateway__UpstreamExchange")), Is.All.EqualTo(queue));
            Assert.That(upstreams, Is.EquivalentTo(hubs.Select(h => $"{h.Key}:8080")), "nginx spreads /hub over exactly the hub services");
            Assert.That(nginx, Does.Contain("proxy_set_header Upgrade $http_upgrade"), "WebSocket upgrade through the proxy");
            Assert.That(services["gateway"]!["build"]!["context"].Text(), Does.EndWith("client"), "the client is built into the load balancer's image, not the hubs'");

            foreach (var (name, service) in services)
            {
                var uri = Env(service!, "ConnectionStrings__rabbitmq");
                if (uri is not null)
                    Assert.That(uri, Does.Contain($":{Password}@rabbitmq:5672/socketstarter"), $"{name}: the broker's password comes from the environment");
            }
        });
    }

    [Test]
    public async Task Keeps_secrets_in_an_env_file_that_is_not_committed()
    {
        var raw = await File.ReadAllTextAsync(ComposeFile);
        var example = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Path, ".env.example"));
        var ignored = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Path, ".dockerignore"));
        var postgres = Env(Yaml.Documents(raw).Single()["services"]!["postgres"]!, "POSTGRES_PASSWORD");

        Assert.Multiple(() =>
        {
            foreach (var variable in Passwords().Keys)
            {
                Assert.That(example, Does.Match($"(?m)^{variable}=$"), $".env.example names {variable} and holds none");
                Assert.That(raw, Does.Contain($"${{{variable}:?"), $"a missing {variable} stops compose with a message");
            }
            Assert.That(postgres, Does.StartWith("${POSTGRES_PASSWORD:?"), "the database's password is the variable, never inline");
            Assert.That(raw, Does.Not.Match("(?im)^\\s*[A-Z_]*(PASS|PASSWORD):\\s+[^$\\s]"), "no literal password in compose.yaml");
            Assert.That(raw, Does.Not.Match("://[^:\\s/\"']+:[^$\\s@\"']+@"), "no literal password in a URI");
            Assert.That(ignored, Does.Contain(".env"), "the env file never goes into an image");
        });
    }

    private static string? Env(JsonNode service, string name) => service["environment"]?[name]?.GetValue<string>();

    private static async Task<JsonObject> ResolvedAsync()
    {
        var result = await ComposeAsync(Passwords(), "config");
        Assert.That(result.ExitCode, Is.Zero, result.Error);
        return Yaml.Documents(result.Output).Single();
    }

    private static async Task<(int ExitCode, string Output, string Error)> ComposeAsync(Dictionary<string, string> variables, params string[] arguments)
    {
        var compose = FindCompose() ?? throw new AssertionException(
            "docker-compose is not installed, so compose.yaml cannot be validated. scripts/test installs it " +
            "(apt-get install -y --no-install-recommends docker-compose); or install Docker Compose yourself.");

        // An empty env file, so a developer's own .env does not change what is checked.
        var envFile = Path.GetTempFileName();
        try
        {
            var start = new ProcessStartInfo(compose[0])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = RepositoryRoot.Path,
            };
            foreach (var argument in compose.Skip(1).Concat(["--env-file", envFile, "-f", ComposeFile]).Concat(arguments))
                start.ArgumentList.Add(argument);
            foreach (var variable in Passwords().Keys)
                start.Environment.Remove(variable);
            foreach (var (key, value) in variables)
                start.Environment[key] = value;
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return (process.ExitCode, await output, await error);
        }
        finally
        {
            File.Delete(envFile);
        }
    }

    /// <summary>Debian's docker-compose (v1), else the Docker CLI's compose plugin.</summary>
    private static string[]? FindCompose()
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator);
        if (path.Select(p => Path.Combine(p, "docker-compose")).FirstOrDefault(File.Exists) is { } v1)
            return [v1];
        if (path.Select(p => Path.Combine(p, "docker")).FirstOrDefault(File.Exists) is { } docker && Succeeds(docker, "compose", "version"))
            return [docker, "compose"];
        return null;
    }

    private static bool Succeeds(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        process.WaitForExit();
        return process.ExitCode == 0;
    }

    [GeneratedRegex(@"^\s*server\s+(?<host>[^\s;{]+:\d+)", RegexOptions.Multiline)]
    private static partial Regex UpstreamServer();
}
