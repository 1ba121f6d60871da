namespace SocketStarter.ChatWorker.Store;

/// <summary>Tables a component keeps in the store, created at start-up when missing.</summary>
public interface IStoreSchema
{
    string Ddl { get; }

    /// <summary>
    /// Columns added to a table after it first shipped: added at start-up to a store that lacks
    /// them (new stores get them from <see cref="Ddl"/>). A definition must allow existing rows,
    /// e.g. <c>TEXT NULL</c>.
    /// </summary>
    IReadOnlyList<(string Table, string Column, string Definition)> AddedColumns => [];
}
