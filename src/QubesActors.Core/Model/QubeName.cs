using System.Text.RegularExpressions;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Model;

/// <summary>Qube name rules of qubesd's <c>validate_name</c> (docs/qubes-semantics.md §1.1).</summary>
public static partial class QubeName
{
    public const int MaxLength = 31;

    [GeneratedRegex(@"\A[0-9_.-]")]
    private static partial Regex BadStart();

    [GeneratedRegex(@"\A[a-zA-Z][a-zA-Z0-9_.-]*\z")]
    private static partial Regex Valid();

    /// <summary>The reason a name is refused, or null when it is acceptable as a new qube's name.</summary>
    public static string? Problem(string untrustedName)
    {
        if (untrustedName.Length == 0)
            return "VM name cannot be empty";
        if (untrustedName.Length > MaxLength)
            return "VM name must be shorter than 32 characters";
        if (BadStart().IsMatch(untrustedName))
            return "VM name cannot start with hyphen, underscore, dot or numbers";
        if (!Valid().IsMatch(untrustedName))
            return "VM name contains illegal characters";
        if (untrustedName is "none" or "default" or "Domain-0")
            return "VM name cannot be 'none', 'default' nor 'Domain-0'";
        if (untrustedName.EndsWith("-dm", StringComparison.Ordinal))
            return "VM name cannot end with -dm";
        return null;
    }

    public static bool IsValid(string untrustedName) => Problem(untrustedName) is null;

    /// <summary>Returns the name once it is known to be valid; throws <see cref="QubesValueError"/> otherwise.</summary>
    public static string Validate(string untrustedName) =>
        Problem(untrustedName) is { } problem ? throw new QubesValueError(problem) : untrustedName;
}

/// <summary>Tag and feature name rules.</summary>
public static partial class QubeTag
{
    [GeneratedRegex(@"\A[a-zA-Z0-9_-]+\z")]
    private static partial Regex Valid();

    public static bool IsValid(string untrustedTag) => Valid().IsMatch(untrustedTag);

    public static string Validate(string untrustedTag) =>
        IsValid(untrustedTag) ? untrustedTag : throw new QubesInvalidTagError($"Invalid tag: {untrustedTag}");
}

public static partial class QubeFeature
{
    // Feature names travel as Admin API arguments: printable ASCII without spaces.
    [GeneratedRegex(@"\A[a-zA-Z0-9_.+-]+\z")]
    private static partial Regex ValidName();

    public static string ValidateName(string untrustedName) =>
        ValidName().IsMatch(untrustedName) ? untrustedName : throw new ProtocolError($"Invalid feature name: {untrustedName}");

    public static string ValidateValue(string untrustedValue)
    {
        foreach (var c in untrustedValue)
            if (c < 0x20 || c > 0x7e)
                throw new ProtocolError("Feature value must be printable ASCII");
        return untrustedValue;
    }
}
