using System.ComponentModel.DataAnnotations;

namespace SocketStarter.ChatWorker.Store;

/// <summary>Where state lives, section <c>Store</c>. Checked once at start-up.</summary>
public sealed class StoreOptions
{
    public const string Section = "Store";

    /// <summary>The SQLite file. Every worker process on a host shares it.</summary>
    [Required(ErrorMessage = "Store:Path must name the SQLite file.")]
    public string Path { get; set; } = "chat.db";

    /// <summary>
    /// SQLite's synchronous mode. FULL syncs each commit, so an acknowledged event survives even
    /// power loss; NORMAL survives process kills only, and is faster.
    /// </summary>
    [Required(ErrorMessage = "Store:Synchronous must be FULL or NORMAL."), RegularExpression("^(FULL|NORMAL)$", ErrorMessage = "Store:Synchronous must be FULL or NORMAL.")]
    public string Synchronous { get; set; } = "FULL";
}
