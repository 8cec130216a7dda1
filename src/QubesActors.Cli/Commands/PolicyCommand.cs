using System.CommandLine;
using QubesActors.Cli.Commands.Policy;

namespace QubesActors.Cli.Commands;

/// <summary>
/// qvm policy: the qrexec policy. <c>eval</c> and <c>lint</c> run the policy language offline (or ask qubesd to
/// evaluate); <c>status</c>, <c>list</c>, <c>get</c>, <c>replace</c>, <c>remove</c> go through the Admin API's
/// policy.* calls (as qubes-policy does).
/// </summary>
public static class PolicyCommand
{
    public static Command Create(QvmContext context)
    {
        var command = new Command("policy", "Evaluate, check and edit the qrexec policy");
        command.Subcommands.Add(PolicyEvalCommand.Create(context));
        command.Subcommands.Add(PolicyLintCommand.Create(context));
        command.Subcommands.Add(PolicyStatusCommand.Create(context));
        command.Subcommands.Add(PolicyFileCommands.List(context));
        command.Subcommands.Add(PolicyFileCommands.Get(context));
        command.Subcommands.Add(PolicyFileCommands.Replace(context));
        command.Subcommands.Add(PolicyFileCommands.Remove(context));
        return command;
    }
}
