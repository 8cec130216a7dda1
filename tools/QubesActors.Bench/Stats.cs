using System.Globalization;
using System.Text.Json;

namespace QubesActors.Bench;

/// <summary>Latency samples (ms) of one kind of operation.</summary>
public sealed class Samples(string name)
{
    private readonly List<double> _ms = [];
    private readonly Lock _gate = new();

    public string Name { get; } = name;
    public int Errors;

    public void Add(double ms)
    {
        lock (_gate)
            _ms.Add(ms);
    }

    public int Count
    {
        get
        {
            lock (_gate)
                return _ms.Count;
        }
    }

    public double Percentile(double p)
    {
        double[] sorted;
        lock (_gate)
            sorted = [.. _ms];
        return Stats.Percentile(sorted, p);
    }
}

public static class Stats
{
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0)
            return double.NaN;
        var sorted = values.Order().ToArray();
        // Nearest-rank on the sorted sample.
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
            return double.NaN;
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    public static string F(double v, int decimals = 1) => double.IsNaN(v) ? "-" : v.ToString("N" + decimals, CultureInfo.InvariantCulture);
}

/// <summary>Plain-text table and one JSON line per result.</summary>
public static class Report
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Table(string title, string[] header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => i < r.Length ? r[i].Length : 0)).ToArray();
        Console.WriteLine();
        Console.WriteLine(title);
        foreach (var (row, index) in all.Select((r, i) => (r, i)))
        {
            Console.WriteLine(string.Join("  ", row.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))));
            if (index == 0)
                Console.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
        }
    }

    public static void JsonLine(object result) => Console.WriteLine(JsonSerializer.Serialize(result, Json));

    public static string CommandLine(string[] args) =>
        "dotnet run -c Release --project tools/QubesActors.Bench -- " + string.Join(' ', args.Select(Quote));

    private static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_.,=/:@+".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";

    /// <summary>Fields of /proc/self/status in kB (VmRSS, VmHWM, ...).</summary>
    public static long ProcStatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return -1;
    }
}
