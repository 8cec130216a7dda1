using System.CommandLine;
using QubesActors.Audit.Timeline;

namespace QubesActors.Audit.Stats;

/// <summary><c>qubes-audit stats</c>: per-qube figures over the whole journal, busiest (most events) first.</summary>
public static class StatsCommand
{
    public static Command Create(AuditContext context)
    {
        var output = new Option<string>("--output", "-o") { Description = "Output format.", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json", "csv");
        var command = new Command("stats",
            "Per qube: events, last start, running time, starts, crashes, restarts, restart loops (restart limit hit), denied policy requests as source; busiest (most events) first.")
        {
            output,
        };
        command.SetAction(async (parse, ct) => await JournalRun.RunAsync(context, parse, async journal =>
        {
            var aggregator = new StatsAggregator();
            await foreach (var e in journal.CurrentAllAsync(ct))
                aggregator.Add(e);
            var stats = aggregator.Build(DateTimeOffset.UtcNow);
            switch (parse.GetValue(output))
            {
                case "json":
                    StatsFormat.WriteJson(context.Writer, stats);
                    break;
                case "csv":
                    StatsFormat.WriteCsv(context.Writer, stats);
                    break;
                default:
                    StatsFormat.WriteTable(context.Writer, stats);
                    break;
            }
            return AuditApp.ExitOk;
        }));
        return command;
    }
}
