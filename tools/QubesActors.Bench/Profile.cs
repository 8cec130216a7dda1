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
        // The proposed JournalLoader change, measured here without touching the runtime: read the raw rows in one pass,
        // then decode + verify the streams in parallel (streams are independent; each chain is checked in order).
        for (var pass = 0; pass < 2; pass++)
        {
            var total = Stopwatch.StartNew();
            var raw = new List<(string Pid, List<(long Seq, string Manifest, byte[] Payload)> Rows)>();
            using (var connection = journal.OpenConnection())
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT persistence_id, sequence_number, manifest, message FROM journal ORDER BY persistence_id, sequence_number";
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    var pid = reader.GetString(0);
                    if (raw.Count == 0 || raw[^1].Pid != pid)
                        raw.Add((pid, []));
                    raw[^1].Rows.Add((reader.GetInt64(1), reader.IsDBNull(2) ? "" : reader.GetString(2), (byte[])reader.GetValue(3)));
                }
            }
            var readMs = total.Elapsed.TotalMilliseconds;
            var streams = new LoadedStream[raw.Count];
            System.Threading.Tasks.Parallel.For(0, raw.Count, i =>
            {
                var chain = new JournalLoader.ChainBuilder(raw[i].Pid);
                foreach (var (seq, manifest, payload) in raw[i].Rows)
                    chain.Add(seq, manifest, payload);
                streams[i] = chain.Finish();
            });
            passes.Add(new { parallel_pass = pass, read_raw_ms = Math.Round(readMs, 1), total_ms = Math.Round(total.Elapsed.TotalMilliseconds, 1), streams = streams.Length });
        }
        Console.Out.WriteLine(Child.ResultPrefix + JsonSerializer.Serialize(passes));
        return 0;
    }
}
