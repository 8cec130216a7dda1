namespace QubesActors.Cli.Shell;

/// <summary>The line after a Tab, and the candidates to show when the Tab could not decide.</summary>
public sealed record TabOutcome(string Line, int Cursor, IReadOnlyList<string> Listing);

/// <summary>
/// Tab as bash does it: one candidate completes the word (and adds a space); several complete their common
/// prefix; when that adds nothing, the candidates are listed for the user to pick.
/// </summary>
public static class TabEdit
{
    public static TabOutcome Apply(string line, int cursor, CompletionResult completion)
    {
        var candidates = completion.Candidates;
        if (candidates.Count == 0)
            return new TabOutcome(line, cursor, []);
        if (candidates.Count == 1)
        {
            var word = ShellTokenizer.Quote(candidates[0]);
            // "--opt=" waits for its value; anything else is a whole word.
            var space = word.EndsWith('=') || (completion.End < line.Length && line[completion.End] == ' ') ? "" : " ";
            return Replace(line, completion, word + space, []);
        }
        var prefix = CommonPrefix(candidates);
        // Extending the word with a prefix that needs quotes would close the quote too early: list instead.
        if (prefix.Length > completion.Word.Length && ShellTokenizer.Quote(prefix) == prefix)
            return Replace(line, completion, prefix, []);
        return new TabOutcome(line, cursor, candidates);
    }

    private static TabOutcome Replace(string line, CompletionResult completion, string text, IReadOnlyList<string> listing) =>
        new(line[..completion.Start] + text + line[completion.End..], completion.Start + text.Length, listing);

    public static string CommonPrefix(IReadOnlyList<string> words)
    {
        var prefix = words[0];
        foreach (var w in words.Skip(1))
        {
            var n = 0;
            while (n < prefix.Length && n < w.Length && prefix[n] == w[n])
                n++;
            prefix = prefix[..n];
        }
        return prefix;
    }
}
