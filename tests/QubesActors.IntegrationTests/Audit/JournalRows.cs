using Microsoft.Data.Sqlite;
using QubesActors.Runtime.Persistence;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>
/// A row written into a journal file directly, as a compromised writer or a hand edit could (the Admin API refuses
/// hostile names and values; the journal file does not).
/// </summary>
internal static class JournalRows
{
    public static void Insert(SqliteConnection connection, string pid, long seq, string manifest, string tags, byte[] message)
    {
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, tags, manifest, identifier, writer_uuid)
            VALUES ($created, 0, $pid, $seq, $message, $tags, $manifest, $serializer, 'test')
            """;
        command.Parameters.AddWithValue("$created", DateTime.UtcNow.Ticks);
        command.Parameters.AddWithValue("$pid", pid);
        command.Parameters.AddWithValue("$seq", seq);
        command.Parameters.AddWithValue("$message", message);
        command.Parameters.AddWithValue("$tags", tags);
        command.Parameters.AddWithValue("$manifest", manifest);
        command.Parameters.AddWithValue("$serializer", QubesEventSerializer.Id);
        command.ExecuteNonQuery();
    }
}
