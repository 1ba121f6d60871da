using System.ComponentModel.DataAnnotations;
using System.Text;

namespace SocketStarter.HubFront.Auth;

/// <summary>
/// Optional JWT bearer authentication of hub clients, section <c>Auth</c>. With neither
/// <see cref="Authority"/> nor <see cref="SigningKey"/> the hub runs in demo mode: anyone connects.
/// </summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";

    /// <summary>OpenID Connect issuer whose published keys sign the tokens (https unless <see cref="RequireHttpsMetadata"/> is off).</summary>
    public string? Authority { get; set; }

    /// <summary>Shared HMAC-SHA256 key (at least 32 bytes of UTF-8) for tokens issued by your own backend.</summary>
    public string? SigningKey { get; set; }

    /// <summary>Expected <c>iss</c>; not checked when empty (an authority's own issuer is checked by its metadata).</summary>
    public string? Issuer { get; set; }

    /// <summary>Expected <c>aud</c>; not checked when empty.</summary>
    public string? Audience { get; set; }

    /// <summary>The claim that identifies the user: stamped on every upstream event, the target of SendToUser.</summary>
    [Required(ErrorMessage = "Auth:UserIdClaim must name a claim."), MinLength(1)]
    public string UserIdClaim { get; set; } = "sub";

    /// <summary>The claim with the user's display name, stamped as <c>UserName</c> on upstream events.</summary>
    [Required(ErrorMessage = "Auth:NameClaim must name a claim."), MinLength(1)]
    public string NameClaim { get; set; } = "name";

    public bool RequireHttpsMetadata { get; set; } = true;

    public bool Enabled => !string.IsNullOrWhiteSpace(Authority) || !string.IsNullOrWhiteSpace(SigningKey);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(Authority) && !string.IsNullOrWhiteSpace(SigningKey))
            yield return new("Set either Auth:Authority or Auth:SigningKey, not both.", [nameof(Authority), nameof(SigningKey)]);
        if (!string.IsNullOrWhiteSpace(Authority) && !Uri.TryCreate(Authority, UriKind.Absolute, out _))
            yield return new("Auth:Authority must be an absolute URL.", [nameof(Authority)]);
        if (!string.IsNullOrWhiteSpace(SigningKey) && Encoding.UTF8.GetByteCount(SigningKey) < 32)
            yield return new("Auth:SigningKey must be at least 32 bytes (HMAC-SHA256).", [nameof(SigningKey)]);
    }
}
