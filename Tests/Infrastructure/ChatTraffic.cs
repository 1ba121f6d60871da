using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.SignalR;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// Steady chat traffic for fault tests: clients in rooms, each saying numbered messages
/// (<c>f7#12</c>) at its own pace while something is broken, and the tally of what became of every
/// one at every member of its room.
/// </summary>
/// <remarks>
/// A send is <em>accepted</em> when the hub returned its seq, <em>refused</em> when the hub said it
/// was not taken (<c>broker_unavailable</c>, limits), and <em>in doubt</em> when the hub could not
/// say (<c>not_confirmed</c>, or the connection died under it): an in-doubt message may arrive or not.
/// A client whose connection dies reconnects to <c>nextHub()</c> and resumes its session.
/// </remarks>
public sealed partial class ChatTraffic : IAsyncDisposable
{
    private static readonly string[] DoubtfulCodes = ["not_confirmed"];

    private readonly TestSystem _system;
    private readonly Func<Uri> _nextHub;
    private readonly TimeSpan _pace;
    private readonly List<Member> _members = [];
    private readonly ConcurrentDictionary<string, int> _refusals = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private long _sent;
    private int _reconnects;

    private ChatTraffic(TestSystem system, Func<Uri> nextHub, TimeSpan pace)
    {
        _system = system;
        _nextHub = nextHub;
        _pace = pace;
    }

    /// <summary>Signs <paramref name="clients"/> clients in, puts them in <paramref name="rooms"/> rooms, and starts them talking.</summary>
    /// <param name="hub">The hub each client connects to first (by index).</param>
    /// <param name="nextHub">Where a client whose connection died connects again.</param>
    public static async Task<ChatTraffic> StartAsync(
        TestSystem system, Func<int, Uri> hub, int clients, int rooms, TimeSpan pace, Func<Uri>? nextHub = null)
    {
        var traffic = new ChatTraffic(system, nextHub ?? (() => hub(0)), pace);
        for (var i = 0; i < clients; i++)
        {
            var member = new Member($"f{i}", $"room{i % rooms}");
            await traffic.ConnectAsync(member, hub(i));
            member.Token = (await member.Client.SignInAsync(member.Name)).GetProperty("token").GetString()!;
            await member.Client.JoinAsync(member.Room);
            traffic._members.Add(member);
        }
        // Each join was answered after its connection entered the room's group: everyone hears everything from here.
        foreach (var member in traffic._members)
            traffic._loops.Add(Task.Run(() => traffic.TalkAsync(member)));
        return traffic;
    }

    public int Clients => _members.Count;

    /// <summary>Every client stops sending; waits for the sends in flight.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
    }

    /// <summary>Waits until every accepted message reached every member of its room (or the timeout), then tallies.</summary>
    public async Task<Tally> DrainAsync(string scenario, TimeSpan timeout)
    {
        await StopAsync();
        var deadline = Stopwatch.StartNew();
        while (Count(scenario).Lost > 0 && deadline.Elapsed < timeout)
            await Task.Delay(100);
        var tally = Count(scenario);
        TestContext.Out.WriteLine(Tally.Header);
        TestContext.Out.WriteLine(tally.ToString());
        return tally;
    }

    public Tally Count(string scenario)
    {
        var accepted = _members.SelectMany(m => m.Outcomes.Where(o => o.Value == Outcome.Accepted).Select(o => (m.Name, m.Room, N: o.Key))).ToList();
        var refused = _members.SelectMany(m => m.Outcomes.Where(o => o.Value == Outcome.Refused).Select(o => $"{m.Name}#{o.Key}")).ToHashSet();
        var inDoubt = _members.SelectMany(m => m.Outcomes.Where(o => o.Value == Outcome.InDoubt).Select(o => $"{m.Name}#{o.Key}")).ToHashSet();
        long delivered = 0, copies = 0, lost = 0, reordered = 0, refusedButDelivered = 0, outOfSeqOrder = 0;
        var seqsByText = new Dictionary<string, HashSet<long>>();
        var latencies = new List<double>();

        foreach (var receiver in _members)
        {
            List<Arrival> arrivals;
            lock (receiver.Arrivals)
                arrivals = [.. receiver.Arrivals];
            var firsts = arrivals.DistinctBy(a => a.Seq).ToList();
            copies += arrivals.Count - firsts.Count;
            delivered += firsts.Count;
            foreach (var a in firsts)
            {
                if (!seqsByText.TryGetValue(a.Text, out var seqs))
                    seqsByText[a.Text] = seqs = [];
                seqs.Add(a.Seq);
                if (refused.Contains(a.Text))
                    refusedButDelivered++;
                var (from, n) = Parse(a.Text);
                var sender = _members.First(m => m.Name == from);
                if (!a.Resumed && sender.SentAt.TryGetValue(n, out var sentAt))
                    latencies.Add(Stopwatch.GetElapsedTime(sentAt, a.At).TotalMilliseconds);
            }

            // Order per sender: live arrivals in the order sent, and the room's seqs in the order sent.
            // Order holds per connection; an in-doubt send died with its connection and may be
            // applied after what the sender said on its next one, so it is left out.
            foreach (var bySender in firsts.Where(a => !inDoubt.Contains(a.Text)).GroupBy(a => Parse(a.Text).From))
            {
                reordered += Inversions(bySender.Where(a => !a.Resumed).Select(a => (long)Parse(a.Text).N));
                reordered += Inversions(bySender.OrderBy(a => a.Seq).Select(a => (long)Parse(a.Text).N));
            }

            // Room order as it reached this client live: a message with a lower seq than one already received.
            outOfSeqOrder += Inversions(firsts.Where(a => !a.Resumed).Select(a => a.Seq));

            var received = firsts.Select(a => a.Text).ToHashSet();
            lost += accepted.Count(m => m.Room == receiver.Room && !received.Contains($"{m.Name}#{m.N}"));
        }

        latencies.Sort();
        return new Tally(
            scenario,
            _members.Count,
            Interlocked.Read(ref _sent),
            accepted.Count,
            _refusals.ToDictionary(),
            _members.Sum(m => m.Outcomes.Count(o => o.Value == Outcome.InDoubt)),
            delivered,
            copies,
            lost,
            Duplicated: seqsByText.Values.Count(s => s.Count > 1),
            reordered,
            refusedButDelivered,
            Dropped: _members.Sum(m => m.AllClients.Sum(c => c.TimesClosed)),
            Reconnects: _reconnects,
            P50: Percentile(latencies, 0.50),
            P99: Percentile(latencies, 0.99),
            OutOfSeqOrder: outOfSeqOrder);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
            await StopAsync();
        _stop.Dispose();
    }

    private async Task ConnectAsync(Member member, Uri hub)
    {
        var client = await _system.ConnectAsync(hub);
        client.Received += (type, payload) => Record(member, type, payload);
        member.Client = client;
        member.AllClients.Add(client);
    }

    private static void Record(Member member, string type, JsonElement payload)
    {
        var at = Stopwatch.GetTimestamp();
        if (type == "message" && payload.GetProperty("room").GetString() == member.Room)
        {
            lock (member.Arrivals)
                member.Arrivals.Add(new Arrival(payload.GetProperty("seq").GetInt64(), payload.GetProperty("text").GetString()!, at, Resumed: false));
        }
        else if (type == "resumed")
        {
            foreach (var room in payload.GetProperty("rooms").EnumerateArray().Where(r => r.GetProperty("room").GetString() == member.Room))
            {
                lock (member.Arrivals)
                {
                    foreach (var m in room.GetProperty("messages").EnumerateArray())
                        member.Arrivals.Add(new Arrival(m.GetProperty("seq").GetInt64(), m.GetProperty("text").GetString()!, at, Resumed: true));
                }
            }
        }
    }

    private async Task TalkAsync(Member member)
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            var n = member.Said + 1;
            member.Said = n;
            member.SentAt[n] = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _sent);
            try
            {
                await member.Client.SendAsync("say", new { room = member.Room, text = $"{member.Name}#{n}" });
                member.Outcomes[n] = Outcome.Accepted;
            }
            catch (HubException ex)
            {
                var code = CodePattern().Match(ex.Message) is { Success: true } m ? m.Groups[1].Value : "unknown";
                _refusals.AddOrUpdate(code, 1, (_, c) => c + 1);
                member.Outcomes[n] = DoubtfulCodes.Contains(code) ? Outcome.InDoubt : Outcome.Refused;
            }
            catch (Exception) when (!stop.IsCancellationRequested)
            {
                // The connection died under the send: the hub may or may not have taken it.
                member.Outcomes[n] = Outcome.InDoubt;
                _refusals.AddOrUpdate("connection_lost", 1, (_, c) => c + 1);
                await ResumeElsewhereAsync(member);
            }
            catch (Exception)
            {
                member.Outcomes[n] = Outcome.InDoubt;
                break;
            }

            try
            {
                await Task.Delay(_pace, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>What the React client does when its connection is gone: a new one, and resume.</summary>
    private async Task ResumeElsewhereAsync(Member member)
    {
        List<long> seen;
        lock (member.Arrivals)
            seen = [.. member.Arrivals.Select(a => a.Seq).Distinct().Order()];
        var lastSeen = seen.Count == 0 ? 0 : seen.TakeWhile((s, i) => i == 0 || s == seen[i - 1] + 1).Last();
        await ConnectAsync(member, _nextHub());
        await member.Client.SendAsync("resume", new { token = member.Token, lastSeen = new Dictionary<string, long> { [member.Room] = lastSeen } });
        await member.Client.WaitForAsync("resumed");
        Interlocked.Increment(ref _reconnects);
    }

    private static (string From, int N) Parse(string text)
    {
        var at = text.LastIndexOf('#');
        return (text[..at], int.Parse(text[(at + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static long Inversions(IEnumerable<long> sequence)
    {
        long count = 0;
        var highest = long.MinValue;
        foreach (var n in sequence)
        {
            if (n < highest)
                count++;
            highest = Math.Max(highest, n);
        }
        return count;
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    [GeneratedRegex(@"HubException: ([a-z_]+)")]
    private static partial Regex CodePattern();

    private enum Outcome { Accepted, Refused, InDoubt }

    private sealed record Arrival(long Seq, string Text, long At, bool Resumed);

    private sealed class Member(string name, string room)
    {
        public string Name { get; } = name;
        public string Room { get; } = room;
        public ChatClient Client { get; set; } = null!;
        public string Token { get; set; } = "";
        public int Said { get; set; }
        public List<ChatClient> AllClients { get; } = [];
        public ConcurrentDictionary<int, long> SentAt { get; } = new();
        public ConcurrentDictionary<int, Outcome> Outcomes { get; } = new();
        public List<Arrival> Arrivals { get; } = [];
    }

    /// <summary>What became of the traffic of one fault scenario.</summary>
    public sealed record Tally(
        string Scenario,
        int Clients,
        long Sent,
        long Accepted,
        IReadOnlyDictionary<string, int> Refusals,
        long InDoubt,
        long Delivered,
        long Copies,
        long Lost,
        long Duplicated,
        long Reordered,
        long RefusedButDelivered,
        long Dropped,
        int Reconnects,
        double P50,
        double P99,
        long OutOfSeqOrder = 0)
    {
        public const string Header =
            "| scenario | clients | sent | accepted | refused (by code) | in doubt | delivered | copies dropped by seq | lost | duplicated | reordered | refused yet delivered | clients dropped | resumed | p50 ms | p99 ms | live arrivals below a seq already received |\n" +
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

        public override string ToString() =>
            $"| {Scenario} | {Clients} | {Sent} | {Accepted} | {(Refusals.Count == 0 ? "0" : string.Join(", ", Refusals.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}")))} | {InDoubt} | {Delivered} | {Copies} | {Lost} | {Duplicated} | {Reordered} | {RefusedButDelivered} | {Dropped} | {Reconnects} | {P50:F1} | {P99:F1} | {OutOfSeqOrder} |";
    }
}
