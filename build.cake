// Build script (Cake 7): `dotnet tool restore && dotnet cake --target=<Target>`.
//
//   Clean    empty every bin/, obj/ and artifacts/
//   Restore  dotnet restore QubesActors.sln
//   Build    Release build of QubesActors.sln
//   Test     (default) run every test project; one TRX per project in artifacts/test-results/.
//            Without QUBES_TEST_POSTGRES it starts a throwaway PostgreSQL for the run
//            (tools/ci/postgres.sh) and stops it afterwards.
//   Bench    dotnet run tools/QubesActors.Bench -- <--bench-args, default "all">

var target = Argument("target", "Test");
var benchArgs = Argument("bench-args", "all");

const string Solution = "./QubesActors.sln";
const string Configuration = "Release";
var testResults = Directory("./artifacts/test-results");

Task("Clean")
    .Does(() =>
{
    CleanDirectories("./src/**/bin");
    CleanDirectories("./src/**/obj");
    CleanDirectories("./tests/**/bin");
    CleanDirectories("./tests/**/obj");
    CleanDirectories("./tools/**/bin");
    CleanDirectories("./tools/**/obj");
    CleanDirectory("./artifacts");
});

Task("Restore")
    .Does(() =>
{
    DotNetRestore(Solution);
});

Task("Build")
    .IsDependentOn("Restore")
    .Does(() =>
{
    DotNetBuild(Solution, new DotNetBuildSettings
    {
        Configuration = Configuration,
        NoRestore = true,
    });
});

Task("Test")
    .IsDependentOn("Build")
    .Does(() =>
{
    CleanDirectory(testResults);

    var settings = new DotNetTestSettings
    {
        Configuration = Configuration,
        NoBuild = true,
        NoRestore = true,
        ResultsDirectory = testResults,
        // One TRX per test project. The default file name (<user>_<host>_<time>_<tfm>.trx) is kept
        // on purpose: vstest makes it unique ([1], [2], ...) when two projects end in the same
        // second, while LogFilePrefix names are overwritten silently.
        Loggers = { "trx" },
        EnvironmentVariables = new Dictionary<string, string>(),
    };

    var postgres = EnvironmentVariable("QUBES_TEST_POSTGRES");
    var ownPostgres = string.IsNullOrEmpty(postgres);
    try
    {
        if (ownPostgres)
        {
            postgres = Postgres("start").Last();
            Information("Started a throwaway PostgreSQL: {0}", postgres);
        }
        settings.EnvironmentVariables["QUBES_TEST_POSTGRES"] = postgres;

        DotNetTest(Solution, settings); // throws when a test fails
    }
    finally
    {
        if (ownPostgres)
        {
            Postgres("stop");
        }
    }
});

Task("Bench")
    .Does(() =>
{
    // dotnet run -c Release --project tools/QubesActors.Bench -- <bench-args>
    DotNetRun("./tools/QubesActors.Bench/QubesActors.Bench.csproj", new ProcessArgumentBuilder().Append(benchArgs), new DotNetRunSettings
    {
        Configuration = Configuration,
    });
});

RunTarget(target);

// Runs `tools/ci/postgres.sh <command>` and returns what it printed on stdout.
List<string> Postgres(string command)
{
    var exitCode = StartProcess("bash", new ProcessSettings
    {
        Arguments = new ProcessArgumentBuilder().Append("tools/ci/postgres.sh").Append(command),
        RedirectStandardOutput = true,
    }, out var output);
    var lines = output.ToList();
    if (exitCode != 0)
    {
        throw new Exception($"tools/ci/postgres.sh {command} exited with {exitCode}");
    }
    return lines;
}
