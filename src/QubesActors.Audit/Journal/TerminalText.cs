using System.Globalization;
using System.Text;

namespace QubesActors.Audit.Journal;

/// <summary>
/// Journal text (qube names, reasons, arguments, feature values) is untrusted: before it reaches a terminal every
/// C0/C1 control character and DEL becomes <c>\xNN</c> (so no ANSI sequence, newline or carriage return survives), and a
/// backslash is doubled so an escape cannot be forged. Markup is harmless because nothing is markup-parsed.
/// </summary>
public static class TerminalText
{
    public static string Escape(string? untrusted)
    {
        if (string.IsNullOrEmpty(untrusted))
            return "";
        if (!NeedsEscape(untrusted))
            return untrusted;
        var sb = new StringBuilder(untrusted.Length + 8);
        foreach (var c in untrusted)
        {
            if (c == '\\')
                sb.Append(@"\\");
            else if (IsControl(c))
                sb.Append(c <= 0xff ? @"\x" : @"\u").Append(((int)c).ToString(c <= 0xff ? "x2" : "x4", CultureInfo.InvariantCulture));
            else
                sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool NeedsEscape(string s)
    {
        foreach (var c in s)
            if (c == '\\' || IsControl(c))
                return true;
        return false;
    }

    /// <summary>
    /// C0, DEL, C1; the Unicode line and paragraph separators (a line break to some terminals and pagers); the bidi
    /// overrides and isolates, which reorder what a terminal shows.
    /// </summary>
    private static bool IsControl(char c) => c < 0x20 || (c >= 0x7f && c <= 0x9f) || c is '\u2028' or '\u2029' or >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';
}
