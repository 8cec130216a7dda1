using System.Collections.Immutable;
using QubesActors.Core.Errors;

namespace QubesActors.Core.Model;

/// <summary>A qube label: index, name and colour (docs/qubes-semantics.md §1.1).</summary>
public sealed record Label(int Index, string Name, string Color)
{
    public static readonly ImmutableArray<Label> Standard =
    [
        new(1, "red", "0xcc0000"),
        new(2, "orange", "0xf57900"),
        new(3, "yellow", "0xedd400"),
        new(4, "green", "0x73d216"),
        new(5, "gray", "0x555555"),
        new(6, "blue", "0x3465a4"),
        new(7, "purple", "0x75507b"),
        new(8, "black", "0x000000"),
    ];

    public static ImmutableSortedDictionary<int, Label> StandardSet { get; } =
        Standard.ToImmutableSortedDictionary(l => l.Index, l => l);

    /// <summary>Finds a label by name or by index, as qubesd's <c>get_label</c> does.</summary>
    public static Label Resolve(IReadOnlyDictionary<int, Label> labels, string untrustedNameOrIndex)
    {
        if (int.TryParse(untrustedNameOrIndex, out var index) && labels.TryGetValue(index, out var byIndex))
            return byIndex;
        foreach (var label in labels.Values)
            if (label.Name == untrustedNameOrIndex)
                return label;
        throw new QubesLabelNotFoundError(untrustedNameOrIndex);
    }
}
