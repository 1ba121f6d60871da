namespace SocketStarter.ChatWorker.Store;

/// <summary>Tables a component keeps in the store, created at start-up when missing.</summary>
public interface IStoreSchema
{
    string Ddl { get; }
}
