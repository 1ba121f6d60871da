using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// A service as its own OS process (<c>dotnet Chat.Worker.dll</c>), for what only a real process
/// shows: signals, exit codes, kills.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private ServiceProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get { lock (_output) return string.Join('\n', _output); }
    }

    /// <summary>Starts <paramref name="assembly"/> from the test output folder and waits until /health/ready answers.</summary>
    public static async Task<ServiceProcess> StartAsync(string assembly, IDictionary<string, string?> settings, string workingDirectory)
    {
        var service = Launch(assembly, settings, workingDirectory);
        using var http = new HttpClient { BaseAddress = service.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        await Wait.UntilAsync(async () =>
        {
            if (service.HasExited)
                Assert.Fail($"{assembly} exited with {service.ExitCode} before it was ready:\n{service.Output}");
            try { return (await http.GetAsync("health/ready")).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
            catch (TaskCanceledException) { return false; }
        }, $"{assembly} reports ready", TimeSpan.FromSeconds(60));
        return service;
    }

    /// <summary>Starts <paramref name="assembly"/> without waiting for it (one that should fail to start).</summary>
    public static ServiceProcess Launch(string assembly, IDictionary<string, string?> settings, string workingDirectory)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, assembly), "--contentRoot", workingDirectory])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        start.Environment["DOTNET_ENVIRONMENT"] = "Testing";
        foreach (var (key, value) in settings)
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;

        return new ServiceProcess(Process.Start(start)!, new Uri($"http://127.0.0.1:{port}/"));
    }

    /// <summary>What an orchestrator sends to stop a service gracefully.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    public Task WaitForExitAsync(TimeSpan timeout) =>
        Wait.UntilAsync(() => _process.HasExited, "the process exits", timeout);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
