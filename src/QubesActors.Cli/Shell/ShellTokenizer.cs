using System.Text;

namespace QubesActors.Cli.Shell;

/// <summary>A line the shell cannot split (an open quote, a trailing backslash).</summary>
public sealed class ShellSyntaxException(string message) : Exception(message);

/// <summary>One word of a line: its unquoted text and where its raw form starts and ends in the line.</summary>
public sealed record ShellWord(string Text, int Start, int End);

/// <summary>
/// The words of a partly typed line, for completion: the finished words, and the word the cursor is in
/// (possibly empty, possibly inside an open quote).
/// </summary>
public sealed record PartialLine(IReadOnlyList<ShellWord> Words, ShellWord Current, char? OpenQuote);

/// <summary>
/// Splits a line into words as a POSIX shell does, minus expansions: whitespace separates words;
/// '...' keeps everything literally; "..." keeps everything but lets backslash escape \ " $ `;
/// outside quotes a backslash makes the next character literal. No globbing, variables or pipes:
/// the words go to System.CommandLine as they are.
/// </summary>
public static class ShellTokenizer
{
    public static IReadOnlyList<string> Tokenize(string line)
    {
        var scan = Scan(line);
        if (scan.OpenQuote is { } q)
            throw new ShellSyntaxException($"unterminated {(q == '\'' ? "single" : "double")} quote");
        if (scan.TrailingBackslash)
            throw new ShellSyntaxException("the line ends with a backslash");
        var words = scan.Words.Select(w => w.Text).ToList();
        if (scan.InWord)
            words.Add(scan.Current.Text);
        return words;
    }

    /// <summary>The words before <paramref name="cursor"/>; never throws (an open quote is what the user is typing).</summary>
    public static PartialLine Partial(string line, int cursor)
    {
        var scan = Scan(line[..Math.Clamp(cursor, 0, line.Length)]);
        var current = scan.InWord ? scan.Current : new ShellWord("", cursor, cursor);
        return new PartialLine(scan.Words, current, scan.OpenQuote);
    }

    /// <summary>Quotes a word so that <see cref="Tokenize"/> gives it back; plain words stay as they are.</summary>
    public static string Quote(string word)
    {
        if (word.Length == 0)
            return "''";
        if (word.All(c => char.IsLetterOrDigit(c) || "-_.,:/=@+%^".Contains(c)))
            return word;
        return "'" + word.Replace("'", "'\\''") + "'";
    }

    private sealed record ScanResult(List<ShellWord> Words, ShellWord Current, bool InWord, char? OpenQuote, bool TrailingBackslash);

    private static ScanResult Scan(string line)
    {
        var words = new List<ShellWord>();
        var text = new StringBuilder();
        var inWord = false;
        var start = 0;
        char? quote = null;
        var i = 0;
        while (i < line.Length)
        {
            var c = line[i];
            if (quote == '\'')
            {
                if (c == '\'')
                    quote = null;
                else
                    text.Append(c);
                i++;
                continue;
            }
            if (quote == '"')
            {
                if (c == '"')
                    quote = null;
                else if (c == '\\' && i + 1 < line.Length && line[i + 1] is '\\' or '"' or '$' or '`')
                    text.Append(line[++i]);
                else if (c == '\\' && i + 1 < line.Length && line[i + 1] == '\n')
                    i++;
                else
                    text.Append(c);
                i++;
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(new ShellWord(text.ToString(), start, i));
                    text.Clear();
                    inWord = false;
                }
                i++;
                continue;
            }
            if (!inWord)
            {
                inWord = true;
                start = i;
            }
            switch (c)
            {
                case '\'' or '"':
                    quote = c;
                    i++;
                    break;
                case '\\' when i + 1 < line.Length:
                    text.Append(line[i + 1]);
                    i += 2;
                    break;
                case '\\':
                    return new ScanResult(words, new ShellWord(text.ToString(), start, line.Length), true, null, TrailingBackslash: true);
                default:
                    text.Append(c);
                    i++;
                    break;
            }
        }
        return new ScanResult(words, new ShellWord(text.ToString(), start, line.Length), inWord, quote, false);
    }
}
