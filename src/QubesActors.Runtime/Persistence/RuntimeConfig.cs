using Akka.Configuration;

namespace QubesActors.Runtime.Persistence;

/// <summary>The Akka settings QubesActors depends on: its event serializer and the SQL journal.</summary>
public static class RuntimeConfig
{
    /// <summary>Binds every <c>DomainEvent</c> to the project's serializer; Newtonsoft would store CLR type names.</summary>
    public const string Serialization = """
        akka.actor {
          serializers.qubes-events = "QubesActors.Runtime.Persistence.QubesEventSerializer, QubesActors.Runtime"
          serialization-bindings {
            "QubesActors.Core.Events.DomainEvent, QubesActors.Core" = qubes-events
            "QubesActors.Runtime.Persistence.QubeSnapshot, QubesActors.Runtime" = qubes-events
          }
          serialization-identifiers {
            "QubesActors.Runtime.Persistence.QubesEventSerializer, QubesActors.Runtime" = 4242001
          }
        }
        """;

    /// <summary>Akka.Persistence.Sql journal and snapshot store in HOCON (tests, tools); the daemon adds the SQLite tuning hook.</summary>
    public static string Persistence(JournalSettings journal)
    {
        var cs = journal.ConnectionString.Replace("\\", "\\\\").Replace("\"", "\\\"");
        return $$"""
            akka.persistence {
              journal {
                plugin = "akka.persistence.journal.sql"
                sql {
                  class = "Akka.Persistence.Sql.Journal.SqlWriteJournal, Akka.Persistence.Sql"
                  connection-string = "{{cs}}"
                  provider-name = "{{journal.Linq2DbProvider}}"
                  auto-initialize = on
                  tag-write-mode = Csv
                }
              }
              snapshot-store {
                plugin = "akka.persistence.snapshot-store.sql"
                sql {
                  class = "Akka.Persistence.Sql.Snapshot.SqlSnapshotStore, Akka.Persistence.Sql"
                  connection-string = "{{cs}}"
                  provider-name = "{{journal.Linq2DbProvider}}"
                  auto-initialize = on
                }
              }
              query.journal.sql {
                class = "Akka.Persistence.Sql.Query.SqlReadJournalProvider, Akka.Persistence.Sql"
                connection-string = "{{cs}}"
                provider-name = "{{journal.Linq2DbProvider}}"
                tag-read-mode = Csv
                refresh-interval = 200ms
                journal-sequence-retrieval.query-delay = 200ms
              }
            }
            """;
    }

    public static Config For(JournalSettings journal) =>
        ConfigurationFactory.ParseString(Serialization + "\n" + Persistence(journal));
}
