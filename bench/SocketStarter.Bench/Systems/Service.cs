using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SocketStarter.Bench.Systems;

/// <summary>One service as its own OS process, from its Release build, logging to a file.</summary>
public sealed class Service : IAsyncDisposable
{
    private readonly Process _process;
    private bool _disposed;

    private Service(string name, Process process, Uri baseAddress, string logFile)
    {
        Name = name;
        _process = process;
        Pid = process.Id;
        BaseAddress = baseAddress;
        LogFile = logFile;
    }

    public string Name { get; }
    public Uri BaseAddress { get; }
    public string LogFile { get; }
    // Kept from the start: a replaced service is still listed by whoever took the list before the swap.
    public int Pid { get; }
    public bool HasExited => _disposed || _process.HasExited;

    public static async Task<Service> StartAsync(string name, string dll, IReadOnlyDictionary<string, string> settings, string logDirectory, CancellationToken cancellationToken)
    {
        if (!File.Exists(dll))
            throw new BenchException(Repository.Published is null
                ? $"{dll} is missing: build the solution in Release first (bench/run does)."
                : $"{dll} is missing: bench/run publishes it unless BENCH_NO_BUILD is set (BENCH_READY_TO_RUN=0 uses the Release builds).");

        var port = FreePort();
        var logFile = Path.Combine(logDirectory, $"{name}.log");
        var directory = Path.GetDirectoryName(dll)!;
        // exec: the pid is the service's own, so SIGTERM reaches it and not a shell.
        var start = new ProcessStartInfo("bash", ["-c", "exec dotnet \"$0\" --contentRoot \"$1\" --urls \"$2\" >>\"$3\" 2>&1 </dev/null",
            dll, directory, $"http://127.0.0.1:{port}", logFile])
        {
            WorkingDirectory = directory,
            UseShellExecute = false,
        };
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings)
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;

        var service = new Service(name, Process.Start(start)!, new Uri($"http://127.0.0.1:{port}/"), logFile);
        try
        {
            await service.WaitReadyAsync(cancellationToken);
        }
        catch
        {
            // Not ready (or the run was stopped meanwhile): the process must not outlive the run.
            await service.DisposeAsync();
            throw;
        }
        return service;
    }

    private async Task WaitReadyAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (_process.HasExited)
                throw new BenchException($"{Name} exited with {_process.ExitCode} before it was ready; see {LogFile}:\n{Tail()}");
            try
            {
                if ((await http.GetAsync("health/ready", cancellationToken)).IsSuccessStatusCode)
                    return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested) { }
            await Task.Delay(100, cancellationToken);
        }
        throw new BenchException($"{Name} was not ready within 60 s; see {LogFile}:\n{Tail()}");
    }

    /// <summary>Resident set size and the managed heap after its last collection, as the process reports them.</summary>
    public async Task<Memory> MemoryAsync()
    {
        long rss = 0;
        foreach (var line in await File.ReadAllLinesAsync($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        return new Memory(rss, await GcHeapAsync());
    }

    private async Task<long?> GcHeapAsync()
    {
        try
        {
            using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
            var text = await http.GetStringAsync("metrics");
            long? sum = null;
            foreach (var line in text.Split('\n'))
            {
                // .NET's own runtime meter: heap size per generation after the last GC.
                if (line.StartsWith("dotnet_gc_last_collection_heap_size_bytes", StringComparison.Ordinal)
                    && double.TryParse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                    sum = (sum ?? 0) + (long)value;
            }
            return sum;
        }
        catch (HttpRequestException) { return null; }
        catch (TaskCanceledException) { return null; }
    }

    /// <summary>What an orchestrator does to stop a service: SIGTERM, then wait for it to exit.</summary>
    public async Task TerminateAsync(TimeSpan timeout)
    {
        if (HasExited)
            return;
        using (var kill = Process.Start("kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)])!)
            await kill.WaitForExitAsync();
        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public string Tail(int lines = 20)
    {
        try { return string.Join('\n', File.ReadLines(LogFile).TakeLast(lines)); }
        catch (IOException) { return "(no log)"; }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        await TerminateAsync(TimeSpan.FromSeconds(30));
        _disposed = true;
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

public readonly record struct Memory(long RssBytes, long? GcHeapBytes);
