using System.ComponentModel.DataAnnotations;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>The chat's limits, section <c>Chat</c>. Checked once at start-up.</summary>
public sealed class ChatOptions
{
    public const string Section = "Chat";

    /// <summary>Rooms one session may be in at once; joining one more is refused with <c>too_many_rooms</c>.</summary>
    [Range(1, 10_000, ErrorMessage = "Chat:MaxRoomsPerSession must be between 1 and 10000.")]
    public int MaxRoomsPerSession { get; set; } = 20;

    /// <summary>
    /// Missed messages one room sends on <c>resume</c>; when more were missed, the room's recent
    /// history comes instead, marked incomplete, so the client replaces what it shows.
    /// </summary>
    [Range(1, 10_000, ErrorMessage = "Chat:ResumeLimit must be between 1 and 10000.")]
    public int ResumeLimit { get; set; } = 200;

    /// <summary>How long after sign-in a session token can resume; later it is refused with <c>unknown_session</c>.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00", ErrorMessage = "Chat:SessionLifetime must be between 00:01:00 and 365.00:00:00.")]
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromDays(1);
}
