using System.Net;
using System.Net.Sockets;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// A TCP hop between clients and a hub, to break the network for real: <see cref="Cut"/> drops
/// every connection through it and holds new ones until <see cref="Release"/>, like a link that
/// goes down and comes back.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly List<TcpClient> _open = [];
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _link = Completed();
    private readonly Task _accepting;

    public TcpProxy(Uri target)
    {
        _target = target;
        _listener.Start();
        Address = new UriBuilder(target) { Port = ((IPEndPoint)_listener.LocalEndpoint).Port }.Uri;
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary><see cref="target"/> with this proxy's port.</summary>
    public Uri Address { get; }

    /// <summary>Drops every connection through the proxy; new ones wait until <see cref="Release"/>.</summary>
    public void Cut()
    {
        lock (_open)
        {
            _link = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            foreach (var client in _open)
                client.Client.Close(0);
            _open.Clear();
        }
    }

    public void Release()
    {
        lock (_open)
            _link.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Release();
        lock (_open)
        {
            foreach (var client in _open)
                client.Dispose();
        }
        try { await _accepting; } catch (Exception) { /* stopped */ }
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            _ = Task.Run(() => ForwardAsync(client));
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        Task link;
        lock (_open)
            link = _link.Task;
        await link;
        using var upstream = new TcpClient();
        try
        {
            await upstream.ConnectAsync(_target.Host, _target.Port, _stop.Token);
            lock (_open)
            {
                // Cut while it was connecting: it goes down with the others.
                if (_link.Task != link)
                    return;
                _open.Add(client);
                _open.Add(upstream);
            }
            using (client)
            {
                var a = client.GetStream().CopyToAsync(upstream.GetStream(), _stop.Token);
                var b = upstream.GetStream().CopyToAsync(client.GetStream(), _stop.Token);
                await Task.WhenAny(a, b);
            }
        }
        catch (Exception)
        {
            // One side went away: the other goes with it.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }
}
