using System.Data.Common;
using Microsoft.Data.Sqlite;
using QubesActors.Runtime.Persistence;

namespace QubesActors.Audit.Journal;

/// <summary>
/// The journal's rows as stored, for <c>verify</c>: the chain and the seals are computed over the stored bytes, which
/// the read journal does not hand out (it decodes them, and fails its whole stream at the first row it cannot decode).
/// Read-only, like <see cref="JournalReader"/>.
/// </summary>
public sealed class RawJournal(JournalSettings readOnly) : IDisposable
{
    private readonly DbConnection _connection = Connect(readOnly);
    private DbTransaction? _snapshot;

    private const string Columns = "ordering, persistence_id, sequence_number, manifest, message";

    public static RawJournal Open(JournalSettings settings) => new(JournalReader.ReadOnly(settings));

    /// <summary>Every row with an ordering above <paramref name="after"/>, in the global order.</summary>
    public IEnumerable<JournalRow> After(long after)
    {
        using var command = Command($"SELECT {Columns} FROM journal WHERE ordering > @after ORDER BY ordering", ("@after", after));
        foreach (var row in Rows(command))
            yield return row;
    }

    /// <summary>
    /// The rows of <paramref name="persistenceIds"/> (by the stream index) and the policy decisions tagged with one of
    /// <paramref name="names"/> (the decision stream, filtered by tag), in the global order.
    /// </summary>
    public IEnumerable<JournalRow> OfQubes(IReadOnlyList<string> persistenceIds, IReadOnlyCollection<string> names)
    {
        var parameters = new List<(string, object)>();
        var streams = string.Join(", ", persistenceIds.Select((pid, i) => Add($"@p{i}", pid)));
        var tags = string.Join(" OR ", names.Select((name, i) => $"tags LIKE {Add($"@t{i}", LikePattern(QubesActors.Runtime.Persistence.EventCodec.Tags.QubePrefix + name))} ESCAPE '\\'"));
        var parts = new List<string>();
        if (persistenceIds.Count > 0)
            parts.Add($"SELECT {Columns} FROM journal WHERE persistence_id IN ({streams})");
        if (names.Count > 0)
            // The inner query reads only columns of the (persistence_id, tags) index qubesd creates, so the planner
            // checks the tags in the index instead of fetching 200,000 decision rows (SQLite 3.53 otherwise picks the
            // unique index); then only the matching rows are read.
            parts.Add($"SELECT {Columns} FROM journal WHERE ordering IN (SELECT ordering FROM journal WHERE persistence_id = '{QubesActors.Runtime.Policy.PolicyDecisionRecorded.PersistenceId}' AND ({tags}))");
        if (parts.Count == 0)
            yield break;
        using var command = Command(string.Join(" UNION ALL ", parts) + " ORDER BY ordering", [.. parameters]);
        foreach (var row in Rows(command))
            yield return row;

        string Add(string name, object value)
        {
            parameters.Add((name, value));
            return name;
        }
    }

    /// <summary>A CSV-mode tag as stored (<c>;a;b;</c>): the tag between separators, LIKE's wildcards escaped.</summary>
    private static string LikePattern(string tag) =>
        "%;" + tag.Replace(@"\", @"\\").Replace("%", @"\%").Replace("_", @"\_") + ";%";

    private DbCommand Command(string sql, params (string Name, object Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.Transaction = _snapshot;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    private static DbConnection Connect(JournalSettings readOnly)
    {
        DbConnection connection = readOnly.Provider == JournalProvider.Sqlite
            ? new SqliteConnection(readOnly.ConnectionString)
            : new Npgsql.NpgsqlConnection(readOnly.ConnectionString);
        connection.Open();
        if (readOnly.Provider == JournalProvider.Sqlite)
            JournalSettings.Execute(connection, "PRAGMA busy_timeout=5000;");
        return connection;
    }

    /// <summary>
    /// Makes the following reads see one state of the database (SQLite: one read transaction over the WAL; PostgreSQL:
    /// repeatable read), so rows persisted meanwhile by a running qubesd do not mix in halfway.
    /// </summary>
    public void BeginSnapshot() =>
        _snapshot = _connection.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);

    /// <summary>The highest ordering persisted so far (0 for an empty journal).</summary>
    public long MaxOrdering()
    {
        using var command = _connection.CreateCommand();
        command.Transaction = _snapshot;
        command.CommandText = "SELECT COALESCE(MAX(ordering), 0) FROM journal";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The name of every qube stream, from its creation event: what a reader starting in the middle of the journal
    /// (the last events, the live tail) needs to name the qubes of the events it shows.
    /// </summary>
    public Dictionary<string, string> QubeNames()
    {
        using var command = _connection.CreateCommand();
        command.Transaction = _snapshot;
        // A qube stream always starts with its creation: sequence number 1 is indexed, the manifest is not (0.02 s
        // instead of 0.43 s for a million rows).
        command.CommandText = "SELECT persistence_id, manifest, message FROM journal WHERE sequence_number = 1 AND manifest = 'qube.created.v1'";
        using var reader = command.ExecuteReader();
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            try
            {
                if (EventCodec.Decode(JournalLoader.PayloadBytes(reader.GetValue(2)), reader.GetString(1)) is QubesActors.Core.Events.QubeCreated created)
                    names[reader.GetString(0)] = created.Name;
            }
            catch (System.Text.Json.JsonException)
            {
                // An unreadable creation (verify reports it): that stream is shown by its uuid.
            }
        }
        return names;
    }

    /// <summary>The rows of one stream in sequence order.</summary>
    public IEnumerable<JournalRow> Stream(string persistenceId)
    {
        using var command = _connection.CreateCommand();
        command.Transaction = _snapshot;
        command.CommandText = "SELECT ordering, persistence_id, sequence_number, manifest, message FROM journal WHERE persistence_id = @pid ORDER BY sequence_number";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@pid";
        parameter.Value = persistenceId;
        command.Parameters.Add(parameter);
        foreach (var row in Rows(command))
            yield return row;
    }

    /// <summary>Every row in the global order, read in one statement (one consistent snapshot of the database).</summary>
    public IEnumerable<JournalRow> All()
    {
        using var command = _connection.CreateCommand();
        command.Transaction = _snapshot;
        command.CommandText = "SELECT ordering, persistence_id, sequence_number, manifest, message FROM journal ORDER BY ordering";
        foreach (var row in Rows(command))
            yield return row;
    }

    private static IEnumerable<JournalRow> Rows(DbCommand command)
    {
        using var reader = command.ExecuteReader();
        while (reader.Read())
            yield return new JournalRow(reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.IsDBNull(3) ? "" : reader.GetString(3),
                JournalLoader.PayloadBytes(reader.GetValue(4)));
    }

    public void Dispose()
    {
        _snapshot?.Dispose();
        _connection.Dispose();
    }
}
