using Microsoft.AspNetCore.SignalR;

namespace SocketStarter.HubFront;

/// <summary>
/// Closes a connection the hub decided to close (an abuse limit, a <c>CloseConnection</c> command):
/// tells the client why, then aborts it. The one place both paths go through.
/// </summary>
public sealed partial class ConnectionCloser(
    IHubContext<GatewayHub, IGatewayClient> hub,
    TimeProvider time,
    ILogger<ConnectionCloser> logger)
{
    /// <summary>A client that does not take the reason within this time is aborted without it.</summary>
    public static readonly TimeSpan ReasonTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Abort tears the transport down at once; without a moment to send it, the reason is lost now and then.</summary>
    public static readonly TimeSpan ReasonGrace = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Tells the client why, waits a moment, aborts. Never throws: whatever goes wrong is logged and the
    /// connection is aborted regardless. A hub invocation awaits it, so the offending connection sends
    /// nothing more meanwhile; the command consumer must not (see its use there).
    /// </summary>
    public async Task CloseAsync(HubCallerContext connection, string reason)
    {
        try
        {
            await hub.Clients.Client(connection.ConnectionId).Closing(reason).WaitAsync(ReasonTimeout, time);
            await Task.Delay(ReasonGrace, time);
        }
        catch (Exception ex)
        {
            LogReasonNotSent(ex, connection.ConnectionId);
        }
        finally
        {
            try
            {
                connection.Abort();
            }
            catch (Exception ex)
            {
                LogAbortFailed(ex, connection.ConnectionId);
            }
        }
    }

    [LoggerMessage(LogLevel.Debug, "Could not tell connection {ConnectionId} why it is closed; aborting it anyway")]
    private partial void LogReasonNotSent(Exception exception, string connectionId);

    [LoggerMessage(LogLevel.Warning, "Aborting connection {ConnectionId} failed")]
    private partial void LogAbortFailed(Exception exception, string connectionId);
}
