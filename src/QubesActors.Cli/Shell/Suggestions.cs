namespace QubesActors.Cli.Shell;

/// <summary>"Did you mean": names that start with the typo, or are at most two edits away from it.</summary>
public static class Suggestions
{
    public static IReadOnlyList<string> Near(string typo, IEnumerable<string> names) =>
        names.Select(n => (Name: n, Distance: n.StartsWith(typo, StringComparison.Ordinal) ? 0 : Distance(typo, n)))
            .Where(x => x.Distance <= 2)
            .OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal)
            .Take(3)
            .Select(x => x.Name)
            .ToList();

    /// <summary>Levenshtein distance.</summary>
    public static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            previous = current;
        }
        return previous[b.Length];
    }
}
