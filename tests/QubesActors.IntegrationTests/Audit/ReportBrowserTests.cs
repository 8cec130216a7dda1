using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using QubesActors.Audit.Journal;
using Xunit;

namespace QubesActors.IntegrationTests.Audit;

/// <summary>
/// <c>report --html</c> loaded in a real headless Chromium (Debian package <c>chromium</c>): it renders without script
/// errors, and the hostile name and reason stay text (no element, no script) in the page.
/// </summary>
public sealed class ReportBrowserTests(TimelineJournalFixture journal) : IClassFixture<TimelineJournalFixture>
{
    private const string Chromium = "/usr/bin/chromium";

    private async Task<(string Path, string Html)> ReportAsync(params string[] extra)
    {
        var path = Path.Combine(journal.StateDir, $"report-{Guid.NewGuid():N}.html");
        var result = await AuditRunner.RunAsync(journal.StateDir, ["report", "--html", path, .. extra]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith($"wrote {path}: 5 qubes", result.Out);
        return (path, await File.ReadAllTextAsync(path));
    }

    /// <summary>The page's DOM after its scripts ran, as Chromium serializes it.</summary>
    private static async Task<string> DumpDomAsync(string url)
    {
        Assert.True(File.Exists(Chromium), "chromium is not installed (tools/ci/install.sh installs it)");
        var profile = Path.Combine(Path.GetTempPath(), "qa-chromium-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(profile);
        try
        {
            var start = new ProcessStartInfo(Chromium)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", $"--user-data-dir={profile}", "--dump-dom", url,
                     })
                start.ArgumentList.Add(arg);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            var dom = await stdout;
            Assert.True(process.ExitCode == 0 && dom.Length > 0, $"chromium exit {process.ExitCode}\n{await stderr}");
            return dom;
        }
        finally
        {
            try
            {
                Directory.Delete(profile, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string Attribute(string dom, string id, string attribute)
    {
        var element = Regex.Match(dom, $"<[a-z]+ id=\"{id}\"[^>]*>").Value;
        return Regex.Match(element, $"{attribute}=\"([^\"]*)\"").Groups[1].Value;
    }

    [Fact]
    public async Task The_report_is_self_contained_and_its_embedded_data_cannot_break_out_of_the_script_element()
    {
        var (_, html) = await ReportAsync();
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        var open = html.IndexOf("id=\"audit-data\">", StringComparison.Ordinal) + "id=\"audit-data\">".Length;
        var close = html.IndexOf("</script>", open, StringComparison.Ordinal);
        var json = html[open..close];
        // No resource reference of the page's own (the data holds the hostile name's src=x, as escaped text).
        Assert.DoesNotMatch(@"\b(src|href)\s*=", html[..open] + html[close..]);
        // The default encoder's escapes: no character that could end the element or break a JS string.
        Assert.DoesNotContain('<', json);
        Assert.DoesNotContain('>', json);
        Assert.DoesNotContain('&', json);
        Assert.DoesNotContain('\u2028', json);
        Assert.DoesNotContain('\u2029', json);
        Assert.DoesNotContain('\u001b', json);
        using var data = JsonDocument.Parse(json);
        var lanes = data.RootElement.GetProperty("lanes").EnumerateArray().ToList();
        Assert.Contains(lanes, l => l.GetProperty("name").GetString() == TimelineJournalFixture.HostileName);
        var crashy = lanes.Single(l => l.GetProperty("name").GetString() == "crashy");
        Assert.Equal("#f57900", crashy.GetProperty("colour").GetString());
        Assert.Contains(data.RootElement.GetProperty("details").EnumerateArray(), d => d.GetString()!.Contains(TimelineJournalFixture.HostileReason));
    }

    [Fact]
    public async Task Chromium_renders_every_lane_and_marker_without_script_errors_and_the_hostile_name_stays_text()
    {
        var (path, _) = await ReportAsync();
        var dom = await DumpDomAsync(new Uri(path).AbsoluteUri);

        Assert.True(Attribute(dom, "status", "data-state") == "rendered", dom);
        Assert.Matches("<ul id=\"errors\"></ul>", dom);
        Assert.DoesNotMatch("<body[^>]*data-script-errors", dom);
        Assert.Equal("5", Attribute(dom, "status", "data-lanes"));
        Assert.True(int.Parse(Attribute(dom, "status", "data-blocks")) >= 3, dom);
        Assert.Contains("class=\"marker crash\"", dom);
        Assert.Contains("class=\"marker restart-loop\"", dom);
        Assert.Contains("class=\"marker denial\"", dom);

        // The name is text: serialized escaped, and none of its markup became an element or ran.
        Assert.Contains("&lt;/script&gt;&lt;img src=x onerror=\"document.title='pwned'\"&gt;", dom);
        Assert.DoesNotContain("<img", dom);
        Assert.DoesNotContain("<b>bold</b>", dom);
        Assert.Contains("<title>qubes-audit report</title>", dom);
        Assert.DoesNotContain("pwned</title>", dom);
        Assert.DoesNotContain("<script>document.title", dom);
    }

    [Fact]
    public async Task The_time_range_filter_re_renders_only_what_falls_inside_it()
    {
        var (path, _) = await ReportAsync();
        // Before any crash: worker's run only, no marker.
        var to = AuditDetails.FormatTime(journal.WhileRunning);
        var dom = await DumpDomAsync(new Uri(path).AbsoluteUri + "#from=" + Uri.EscapeDataString(AuditDetails.FormatTime(journal.WorkerCreated)) + "&to=" + Uri.EscapeDataString(to));
        Assert.True(Attribute(dom, "status", "data-state") == "rendered", dom);
        Assert.Equal("0", Attribute(dom, "status", "data-markers"));
        Assert.Equal("1", Attribute(dom, "status", "data-blocks"));
        Assert.Contains(to, Regex.Match(dom, "<div id=\"status\"[^>]*>([^<]*)<").Groups[1].Value);

        var bad = await DumpDomAsync(new Uri(path).AbsoluteUri + "#from=yesterday-ish");
        Assert.Equal("bad-range", Attribute(bad, "status", "data-state"));
    }
}
