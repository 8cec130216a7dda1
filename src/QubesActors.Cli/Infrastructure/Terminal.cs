using System.Globalization;
using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace QubesActors.Cli.Infrastructure;

/// <summary>A piece of output text with an optional style; the text is sanitised when written.</summary>
public readonly record struct Cell(string Text, Style? Style = null)
{
    public static implicit operator Cell(string text) => new(text);
}

/// <summary>
/// Output primitives. Everything goes through the context's <see cref="IAnsiConsole"/> as segments: no markup
/// parsing (daemon text can hold '[' ']'), no wrapping at the console width (a qvm ls table must stay one row per
/// line when piped), and control characters escaped so daemon text never reaches the terminal raw.
/// </summary>
public static class Terminal
{
    /// <summary>Control characters (C0 but tab, DEL, C1) as <c>\xNN</c>; everything else as is.</summary>
    public static string Sanitize(string text)
    {
        if (!text.Any(IsControl))
            return text;
        var sb = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if (IsControl(c))
                sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else
                sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool IsControl(char c) => (c < ' ' && c != '\t') || c is >= '\u007f' and <= '\u009f';

    /// <summary>Multi-line text: each line sanitised, the line structure kept.</summary>
    public static void WriteText(this IAnsiConsole console, string text)
    {
        var lines = text.Split('\n');
        var count = text.EndsWith('\n') ? lines.Length - 1 : lines.Length;
        for (var i = 0; i < count; i++)
            console.WriteCells(lines[i]);
    }

    public static void WriteCells(this IAnsiConsole console, params Cell[] cells) => console.Write(new LineRenderable(cells));

    /// <summary>A line on the error writer (plain text, sanitised).</summary>
    public static void ErrorLine(this TextWriter error, string text) => error.WriteLine(Sanitize(text));

    private sealed class LineRenderable(IReadOnlyList<Cell> cells) : Renderable
    {
        protected override IEnumerable<Segment> Render(RenderOptions options, int maxWidth)
        {
            foreach (var cell in cells)
                yield return new Segment(Sanitize(cell.Text), cell.Style ?? Style.Plain);
            yield return Segment.LineBreak;
        }
    }
}

/// <summary>Label colours (§1.1) as Spectre styles. Custom labels have no known colour and print plain.</summary>
public static class LabelStyles
{
    public static Style? For(string label) => label switch
    {
        "red" => new Style(new Color(0xcc, 0x00, 0x00)),
        "orange" => new Style(new Color(0xf5, 0x79, 0x00)),
        "yellow" => new Style(new Color(0xed, 0xd4, 0x00)),
        "green" => new Style(new Color(0x73, 0xd2, 0x16)),
        "gray" => new Style(new Color(0x55, 0x55, 0x55)),
        "blue" => new Style(new Color(0x34, 0x65, 0xa4)),
        "purple" => new Style(new Color(0x75, 0x50, 0x7b)),
        // Black text is invisible on a dark terminal; bold default foreground marks it instead.
        "black" => new Style(decoration: Decoration.Bold),
        _ => (Style?)null,
    };
}

/// <summary>
/// Rows aligned as <c>column -t</c> does: each column as wide as its widest cell, two spaces between columns,
/// no padding after the last one.
/// </summary>
public static class AlignedTable
{
    public static void Write(IAnsiConsole console, IReadOnlyList<IReadOnlyList<Cell>> rows)
    {
        if (rows.Count == 0)
            return;
        var columns = rows.Max(r => r.Count);
        var widths = new int[columns];
        foreach (var row in rows)
            for (var i = 0; i < row.Count; i++)
                widths[i] = Math.Max(widths[i], Terminal.Sanitize(row[i].Text).Length);
        foreach (var row in rows)
        {
            var cells = new List<Cell>();
            // Trailing empty cells would only leave trailing spaces.
            var last = row.Count - 1;
            while (last > 0 && row[last].Text.Length == 0)
                last--;
            for (var i = 0; i <= last; i++)
            {
                cells.Add(row[i]);
                if (i < last)
                    cells.Add(new string(' ', widths[i] - Terminal.Sanitize(row[i].Text).Length + 2));
            }
            console.WriteCells([.. cells]);
        }
    }
}
