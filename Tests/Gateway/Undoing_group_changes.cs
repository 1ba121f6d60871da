using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// An application that changes a group and then undoes its work (a refused request): a removal is
/// undone like everything else; an addition stays, since it reached the hub at once. Either way the
/// runtime's record of who is in the group, which decides where the group's messages go, must agree
/// with the hub's.
/// </summary>
public sealed class Undoing_group_changes
{
    [Test]
    public async Task A_removal_then_RollbackAsync_leaves_the_member_in_the_group()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync<MembershipApp>();
        var member = await system.ConnectAsync(hub);
        var other = await system.ConnectAsync(hub);
        var join = await member.SendAsync("join", new { group = "g" });
        await member.WaitForAsync("joined", j => j.GetProperty("seq").GetInt64() == join);

        var refusal = await other.SendAsync("removeThenRefuse", new { connection = member.ConnectionId, group = "g" });
        await other.WaitForAsync("refused", r => r.GetProperty("seq").GetInt64() == refusal);
        await other.SendAsync("say", new { group = "g", text = "after the refusal" });

        // It failed before: the removal's record stayed, so the group had no member left on record
        // and its message went to no hub instance.
        await member.WaitForAsync("said", m => m.GetProperty("text").GetString() == "after the refusal");
    }

    [Test]
    public async Task A_join_then_RollbackToAsync_stays_a_member_and_hears_the_group()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync<MembershipApp>();
        var member = await system.ConnectAsync(hub);
        var other = await system.ConnectAsync(hub);

        var undo = await member.SendAsync("joinThenUndo", new { group = "g" });
        await member.WaitForAsync("undone", u => u.GetProperty("seq").GetInt64() == undo);
        await other.SendAsync("say", new { group = "g", text = "after the undo" });

        // It failed before: the hub had the member (its AddToGroup went at once) but the record of
        // it went with the savepoint, so the group's message went to no hub instance.
        await member.WaitForAsync("said", m => m.GetProperty("text").GetString() == "after the undo");
    }
}
