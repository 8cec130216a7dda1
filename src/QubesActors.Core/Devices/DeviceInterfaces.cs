using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Devices;

/// <summary>
/// Interface codes: seven characters, a class letter (<c>p</c> pci, <c>u</c> usb, <c>b</c> block, <c>m</c> mic,
/// <c>?</c> unknown) then six hex digits of class/subclass/protocol, e.g. <c>u0e0100</c>. A device lists them
/// concatenated; a pattern (as in <c>devices_denied</c>) may use <c>*</c> for any character.
/// </summary>
public static class DeviceInterfaces
{
    public const int CodeLength = 7;
    public const string UnknownCode = "?******";

    public static bool IsValidCode(string code, bool allowWildcards = true) =>
        code.Length == CodeLength &&
        (char.IsAsciiLetterLower(code[0]) || code[0] == '?' || (allowWildcards && code[0] == '*')) &&
        code.Skip(1).All(c => char.IsAsciiHexDigit(c) || c == '*');

    /// <summary>Splits a concatenation of codes.</summary>
    /// <exception cref="QubesValueError">Length not a multiple of seven (upstream's message).</exception>
    /// <exception cref="ProtocolError">A code with other characters.</exception>
    public static ImmutableArray<string> Split(string interfaces)
    {
        if (interfaces.Length % CodeLength != 0)
            throw new QubesValueError(
                $"Invalid length of interfaces='{interfaces}' (is {interfaces.Length}, expected multiple of {CodeLength})");
        var codes = ImmutableArray.CreateBuilder<string>(interfaces.Length / CodeLength);
        for (var i = 0; i < interfaces.Length; i += CodeLength)
        {
            var code = interfaces.Substring(i, CodeLength);
            if (!IsValidCode(code))
                throw new ProtocolError("Invalid characters in interface encoding");
            codes.Add(code);
        }
        return codes.MoveToImmutable();
    }

    /// <summary>A denied-interface pattern: a prefix such as <c>u0e</c> is padded with <c>*</c> to a full code.</summary>
    /// <exception cref="QubesValueError">Longer than a code.</exception>
    /// <exception cref="ProtocolError">Forbidden characters.</exception>
    public static string NormalizePattern(string pattern)
    {
        if (pattern.Length is 0 or > CodeLength)
            throw new QubesValueError($"Invalid device interface pattern: '{pattern}'");
        var padded = pattern.PadRight(CodeLength, '*');
        if (!IsValidCode(padded))
            throw new ProtocolError("Invalid characters in interface encoding");
        return padded;
    }

    /// <summary>Character by character, <c>*</c> in the pattern matching anything (upstream <c>DeviceInterface.matches</c>).</summary>
    public static bool Matches(string pattern, string code)
    {
        var full = NormalizePattern(pattern);
        if (full.Length != code.Length)
            return false;
        for (var i = 0; i < full.Length; i++)
        {
            if (full[i] != '*' && full[i] != code[i])
                return false;
        }
        return true;
    }

    /// <summary>The first code of <paramref name="interfaces"/> that one of <paramref name="deniedPatterns"/> matches.</summary>
    public static string? FirstDenied(IEnumerable<string> deniedPatterns, string interfaces)
    {
        var codes = Split(interfaces);
        var patterns = deniedPatterns.ToList();
        return codes.FirstOrDefault(code => patterns.Any(p => Matches(p, code)));
    }
}
