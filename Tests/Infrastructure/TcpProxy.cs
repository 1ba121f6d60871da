using System.Net;
using System.Net.Sockets;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// A TCP hop between clients and a server (a hub, the broker), to break the network for real:
/// <see cref="Cut"/> drops every connection through it and holds new ones until <see cref="Release"/>,
/// like a link that goes down and comes back; <see cref="Hold"/> stops what the clients send from
/// reaching the server, connections open and the server's bytes still flowing to them, until
/// <see cref="Resume"/> delivers it all, like a one-way stall.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly List<TcpClient> _open = [];
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _link = Completed();
    private TaskCompletionSource _outgoing = Completed();
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
            // Client is null once a side has been disposed (its forwarding just ended).
            foreach (var client in _open)
                client.Client?.Close(0);
            _open.Clear();
        }
    }

    public void Release()
    {
        lock (_open)
            _link.TrySetResult();
    }

    /// <summary>What the clients send from now on waits in the proxy (and their sockets) until <see cref="Resume"/>.</summary>
    public void Hold()
    {
        lock (_open)
        {
            if (_outgoing.Task.IsCompleted)
                _outgoing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Delivers what waited since <see cref="Hold"/>, in order, and carries on.</summary>
    public void Resume()
    {
        lock (_open)
            _outgoing.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Release();
        Resume();
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
                var a = ForwardClientBytesAsync(client.GetStream(), upstream.GetStream());
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
            // A connection that ended (a negotiate request, a side that closed) leaves the list
            // before its sockets are disposed, so that Cut never meets a disposed one.
            lock (_open)
            {
                _open.Remove(client);
                _open.Remove(upstream);
            }
            client.Dispose();
        }
    }

    private async Task ForwardClientBytesAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
        {
            Task outgoing;
            lock (_open)
                outgoing = _outgoing.Task;
            await outgoing.WaitAsync(_stop.Token);
            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }
}
