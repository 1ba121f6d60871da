using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>YAML documents as JSON nodes, for specs that read deployment files. Scalars stay strings.</summary>
public static class Yaml
{
    private static readonly IDeserializer Deserializer = new DeserializerBuilder().Build();
    private static readonly ISerializer ToJson = new SerializerBuilder().JsonCompatible().Build();

    /// <summary>Every document of a YAML stream (anchors and merge keys resolved).</summary>
    public static IReadOnlyList<JsonObject> Documents(string text)
    {
        var parser = new MergingParser(new Parser(new StringReader(text)));
        parser.Consume<StreamStart>();
        var documents = new List<JsonObject>();
        while (parser.Accept<DocumentStart>(out _))
        {
            var document = Deserializer.Deserialize<object?>(parser);
            if (document is not null)
                documents.Add(JsonNode.Parse(ToJson.Serialize(document))!.AsObject());
        }
        return documents;
    }

    public static string Text(this JsonNode? node) => node?.GetValue<string>() ?? "";

    public static IEnumerable<JsonNode> Items(this JsonNode? node) => node is JsonArray array ? array.OfType<JsonNode>() : [];
}
