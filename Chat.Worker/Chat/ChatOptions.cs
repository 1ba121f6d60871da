using System.ComponentModel.DataAnnotations;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>The chat's limits, section <c>Chat</c>. Checked once at start-up.</summary>
public sealed class ChatOptions
{
    public const string Section = "Chat";

    /// <summary>Rooms one session may be in at once; joining one more is refused with <c>too_many_rooms</c>.</summary>
    [Range(1, 10_000, ErrorMessage = "Chat:MaxRoomsPerSession must be between 1 and 10000.")]
    public int MaxRoomsPerSession { get; set; } = 20;
}
