using System.CommandLine;
using System.Text;
using QubesActors.Cli.Infrastructure;

namespace QubesActors.Cli.Commands.Policy;

/// <summary>
/// qvm policy list|get|replace|remove: the Admin API's policy.* calls (policy.include.* with <c>--include</c>), all
/// to dom0 with the file name as argument. Files are edited with a token (qubes-policy's optimistic locking): the
/// one policy.Get returned, <c>new</c> (the file must not exist) or <c>any</c>.
/// </summary>
internal static class PolicyFileCommands
{
    private static Option<bool> IncludeOption() => new("--include", "-i") { Description = "An include file (include/ directory, policy.include.* calls)" };

    private static string Method(Invocation inv, Option<bool> include, string verb) => inv.Get(include) ? $"policy.include.{verb}" : $"policy.{verb}";

    private static Argument<string> NameArgument() => new("NAME") { Description = "The policy file's name, e.g. 30-user" };

    public static Command List(QvmContext context)
    {
        var include = IncludeOption();
        var output = Qvm.OutputOption();
        var command = new Command("list", "List the policy files (or include files) in the daemon's policy directory");
        command.Aliases.Add("ls");
        command.Options.Add(include);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var names = QubesApi.Lines(await inv.Api.CallAsync(Method(inv, include, "List"), "dom0", ct: inv.Ct).ConfigureAwait(false))
                .Order(StringComparer.Ordinal).ToList();
            if (inv.Json(output))
                inv.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var name in names)
                        w.WriteStringValue(name);
                    w.WriteEndArray();
                });
            else
                foreach (var name in names)
                    inv.Out.WriteCells(name);
            return Qvm.ExitOk;
        });
        return command;
    }

    public static Command Get(QvmContext context)
    {
        var name = NameArgument();
        var include = IncludeOption();
        var tokenOnly = new Option<bool>("--token") { Description = "Print only the file's current token (for replace/remove --token)" };
        var output = Qvm.OutputOption();
        var command = new Command("get", "Print a policy file's content");
        command.Arguments.Add(name);
        command.Options.Add(include);
        command.Options.Add(tokenOnly);
        command.Options.Add(output);
        command.SetQvmAction(context, async inv =>
        {
            var answer = await inv.Api.CallAsync(Method(inv, include, "Get"), "dom0", inv.Get(name)!, ct: inv.Ct).ConfigureAwait(false);
            // "<token>\n<content>": the content may be empty, the token never is.
            var newline = answer.IndexOf('\n', StringComparison.Ordinal);
            if (newline <= 0)
                throw new QvmRuntimeException($"unexpected answer from qubesd: no token line in '{Terminal.Sanitize(answer)}'");
            var token = answer[..newline];
            var content = answer[(newline + 1)..];
            if (inv.Json(output))
                inv.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("name", inv.Get(name));
                    w.WriteString("token", token);
                    if (!inv.Get(tokenOnly))
                        w.WriteString("content", content);
                    w.WriteEndObject();
                });
            else if (inv.Get(tokenOnly))
                inv.Out.WriteCells(token);
            else
                WriteRaw(inv, content);
            return Qvm.ExitOk;
        });
        return command;
    }

    public static Command Replace(QvmContext context)
    {
        var name = NameArgument();
        var include = IncludeOption();
        var token = new Option<string?>("--token") { Description = "Replace only if the file is unchanged since 'get' returned this token" };
        var isNew = new Option<bool>("--new") { Description = "Create the file; fail if it exists" };
        var any = new Option<bool>("--any") { Description = "Replace or create whatever the file holds (the default)" };
        var from = new Option<string?>("--from") { Description = "Read the new content from this file ('-' = stdin; default: stdin when it is redirected)" };
        var command = new Command("replace", "Create or replace a policy file with new content (checked by the daemon before it is written)");
        command.Arguments.Add(name);
        command.Options.Add(include);
        command.Options.Add(token);
        command.Options.Add(isNew);
        command.Options.Add(any);
        command.Options.Add(from);
        command.SetQvmAction(context, async inv =>
        {
            var chosen = (inv.Get(token) is not null ? 1 : 0) + (inv.Get(isNew) ? 1 : 0) + (inv.Get(any) ? 1 : 0);
            if (chosen > 1)
                throw new QvmUsageException("--token, --new and --any are mutually exclusive");
            var lockToken = inv.Get(token) ?? (inv.Get(isNew) ? "new" : "any");
            CheckToken(lockToken);
            var content = await ReadContentAsync(inv, inv.Get(from)).ConfigureAwait(false);
            await inv.Api.CallAsync(Method(inv, include, "Replace"), "dom0", inv.Get(name)!, lockToken + "\n" + content, inv.Ct).ConfigureAwait(false);
            return Qvm.ExitOk;
        });
        return command;
    }

    public static Command Remove(QvmContext context)
    {
        var name = NameArgument();
        var include = IncludeOption();
        var token = new Option<string?>("--token") { Description = "Remove only if the file is unchanged since 'get' returned this token (default: any)" };
        var command = new Command("remove", "Remove a policy file");
        command.Aliases.Add("rm");
        command.Arguments.Add(name);
        command.Options.Add(include);
        command.Options.Add(token);
        command.SetQvmAction(context, async inv =>
        {
            var lockToken = inv.Get(token) ?? "any";
            CheckToken(lockToken);
            await inv.Api.CallAsync(Method(inv, include, "Remove"), "dom0", inv.Get(name)!, lockToken, inv.Ct).ConfigureAwait(false);
            return Qvm.ExitOk;
        });
        return command;
    }

    /// <summary>A token is one line of the payload; a newline in it would shift the content.</summary>
    private static void CheckToken(string token)
    {
        if (token.Length == 0 || token.Contains('\n', StringComparison.Ordinal))
            throw new QvmUsageException("--token must be one non-empty line");
    }

    /// <summary>
    /// The content from <c>--from PATH</c>, or from stdin when it is redirected. An interactive stdin (also inside
    /// <c>qvm shell</c>, whose stdin is the user's terminal) is never read: that would block on the user's keys.
    /// </summary>
    private static async Task<string> ReadContentAsync(Invocation inv, string? path)
    {
        if (path is null && !Console.IsInputRedirected)
            throw new QvmUsageException("no content: give --from PATH or redirect stdin");
        try
        {
            if (path is null or "-")
                return await Console.In.ReadToEndAsync(inv.Ct).ConfigureAwait(false);
            var bytes = await File.ReadAllBytesAsync(path, inv.Ct).ConfigureAwait(false);
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw new QvmRuntimeException($"cannot read '{path ?? "-"}': {e.Message}");
        }
    }

    /// <summary>Redirected output gets the exact text (a file round-trips); a terminal gets control characters escaped.</summary>
    private static void WriteRaw(Invocation inv, string text)
    {
        if (!inv.Interactive)
        {
            inv.Out.Profile.Out.Writer.Write(text);
            inv.Out.Profile.Out.Writer.Flush();
            return;
        }
        inv.Out.WriteText(text.EndsWith('\n') || text.Length == 0 ? text : text + "\n");
    }
}
