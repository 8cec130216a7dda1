using System.Diagnostics;
using System.Text.Json;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Bench;

/// <summary>
/// profile-load (hidden): where JournalLoader.Load spends its time, by re-running its loop with a stopwatch per stage:
/// open + query, row read (GetString/GetValue), EventCodec.Decode, EventCodec.Hash. Three passes in one process (cold, warm, warm).
/// </summary>
public static class Profile
{
    public static int Load(BenchStore store)
    {
        var journal = store.Settings().Journal;
        var passes = new List<object>();
        for (var pass = 0; pass < 3; pass++)
        {
            var total = Stopwatch.StartNew();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            double open = 0, read = 0, decode = 0, hash = 0;
            long rows = 0, bytes = 0;
            var t = Stopwatch.StartNew();
            using (var connection = journal.OpenConnection())
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT persistence_id, sequence_number, manifest, message FROM journal ORDER BY persistence_id, sequence_number";
                using var reader = command.ExecuteReader();
                open = t.Elapsed.TotalMilliseconds;
                while (true)
                {
                    t.Restart();
                    if (!reader.Read())
                    {
                        read += t.Elapsed.TotalMilliseconds;
                        break;
                    }
                    var pid = reader.GetString(0);
                    var seq = reader.GetInt64(1);
                    var manifest = reader.IsDBNull(2) ? "" : reader.GetString(2);
                    var payload = (byte[])reader.GetValue(3);
                    read += t.Elapsed.TotalMilliseconds;
                    t.Restart();
                    var e = EventCodec.Decode(payload, manifest);
                    decode += t.Elapsed.TotalMilliseconds;
                    t.Restart();
                    EventCodec.Hash(pid, seq, manifest, payload);
                    hash += t.Elapsed.TotalMilliseconds;
                    GC.KeepAlive(e);
                    rows++;
                    bytes += payload.Length;
                }
            }
            var loader = Stopwatch.StartNew();
            var loaded = JournalLoader.Load(journal);
            var loaderMs = loader.Elapsed.TotalMilliseconds;
            var rec = Stopwatch.StartNew();
            CollectionRecovery.Recover(loaded);
            passes.Add(new
            {
                pass, rows, avg_payload_bytes = rows == 0 ? 0 : bytes / rows, open_query_ms = Math.Round(open, 1), read_ms = Math.Round(read, 1),
                decode_ms = Math.Round(decode, 1), hash_ms = Math.Round(hash, 1), loop_total_ms = Math.Round(total.Elapsed.TotalMilliseconds - loaderMs, 1),
                journal_loader_load_ms = Math.Round(loaderMs, 1), collection_recover_ms = Math.Round(rec.Elapsed.TotalMilliseconds, 1),
                cpu_ms = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds, 0),
            });
        }
        Console.Out.WriteLine(Child.ResultPrefix + JsonSerializer.Serialize(passes));
        return 0;
    }
}
