using System.Text.RegularExpressions;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed partial class The_hub
{
    [Test]
    public void Knows_nothing_of_the_chat()
    {
        var sources = Directory.EnumerateFiles(Path.Combine(RepositoryRoot.Path, "Hub.Front"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                     && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        var mentions = sources
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: Path.GetFileName(f), Line: i + 1, Text: line)))
            .Where(l => ChatWords().IsMatch(l.Text))
            .Select(l => $"{l.File}:{l.Line}: {l.Text.Trim()}")
            .ToList();

        Assert.Multiple(() =>
        {
            Assert.That(sources, Is.Not.Empty);
            Assert.That(mentions, Is.Empty, "Hub.Front must hold no application logic");
        });
    }

    // Whole words for the event names: "SigningKey" (a JWT setting) is not the chat's signIn.
    [GeneratedRegex(@"room|chat|\bsignIn\b|\bsay\b", RegexOptions.IgnoreCase)]
    private static partial Regex ChatWords();
}
