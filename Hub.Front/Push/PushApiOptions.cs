using System.ComponentModel.DataAnnotations;

namespace SocketStarter.HubFront.Push;

/// <summary>The HTTP push API for backend services, section <c>PushApi</c>. Off unless a key is set.</summary>
public sealed class PushApiOptions
{
    public const string Section = "PushApi";

    /// <summary>
    /// The key services present as <c>Authorization: Bearer KEY</c> or <c>X-Api-Key: KEY</c>.
    /// Without one the API is not mapped at all (404): an open push API would let anyone message every client.
    /// </summary>
    [MinLength(16, ErrorMessage = "PushApi:ApiKey must be at least 16 characters.")]
    [RegularExpression(@"^[\s\S]*\S[\s\S]*$", ErrorMessage = "PushApi:ApiKey must not be only spaces.")]
    public string? ApiKey { get; set; }

    /// <summary>Largest request body; larger ones get 413 before they are read.</summary>
    [Range(1024, 16 * 1024 * 1024 + 65536, ErrorMessage = "PushApi:MaxBodyBytes must be between 1024 and 16842752.")]
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    public bool Enabled => !string.IsNullOrEmpty(ApiKey);
}
