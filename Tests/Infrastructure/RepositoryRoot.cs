namespace SocketStarter.Tests.Infrastructure;

/// <summary>The checkout the tests run from, found by its solution file.</summary>
public static class RepositoryRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "SocketStarter.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"SocketStarter.sln not found above {AppContext.BaseDirectory}");
    }
}
