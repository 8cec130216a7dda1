using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace QubesActors.Runtime.Persistence;

public enum JournalProvider
{
    Sqlite,
    PostgreSql,
}

/// <summary>Where the journal lives. The same settings feed Akka.Persistence.Sql and the bulk loader.</summary>
public sealed record JournalSettings(JournalProvider Provider, string ConnectionString)
{
    public const string CollectionPersistenceId = "qubes-collection";
    public const string QubePersistenceIdPrefix = "qube-";

    public static string PersistenceIdOf(Guid uuid) => QubePersistenceIdPrefix + uuid.ToString("D");

    public static JournalSettings SqliteFile(string path) =>
        new(JournalProvider.Sqlite, new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString());

    /// <summary>linq2db provider name used by Akka.Persistence.Sql (docs/akka-stack.md §2).</summary>
    public string Linq2DbProvider => Provider == JournalProvider.Sqlite ? "SQLite.MS" : "PostgreSQL.15";

    public DbConnection OpenConnection()
    {
        DbConnection connection = Provider == JournalProvider.Sqlite
            ? new SqliteConnection(ConnectionString)
            : new NpgsqlConnection(ConnectionString);
        connection.Open();
        if (Provider == JournalProvider.Sqlite)
            Execute(connection, SqlitePragmas);
        return connection;
    }

    /// <summary>WAL + synchronous=NORMAL: about 5x the write throughput of the defaults (docs/akka-stack.md §3).</summary>
    public const string SqlitePragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;";

    public static void Execute(DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Creates the SQLite file's directory; the file itself is created on first open.</summary>
    public void EnsureStorage()
    {
        if (Provider != JournalProvider.Sqlite)
            return;
        var path = new SqliteConnectionStringBuilder(ConnectionString).DataSource;
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
            Directory.CreateDirectory(dir);
    }
}
