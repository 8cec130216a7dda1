using Akka.Actor;
using Akka.Event;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;
using QubesActors.Core.Policy;
using QubesActors.Runtime.Actors;
using static QubesActors.Runtime.Policy.PolicyProtocol;

namespace QubesActors.Runtime.Policy;

/// <summary>
/// /user/policy: owns the loaded qrexec policy (or its load error), reloads it when a file of its directories changes
/// (debounced, swapped whole: a decision sees the old policy or the new one, never a mix), decides calls, applies the
/// policy Admin API's changes, and records every decision (child <see cref="PolicyDecisionLog"/>) and its §7 line.
/// Fail closed: while the policy does not load, every call is denied with the load error.
/// </summary>
public sealed class PolicyActor : ReceiveActor, IWithTimers
{
    private sealed record FilesChanged;
    private sealed record Decide(EvaluatePolicy Request, CollectionState State, IActorRef ReplyTo);
    private sealed record CollectionFailed(EvaluatePolicy Request, Exception Error, IActorRef ReplyTo);
    private sealed record DryRunWith(DryRunPolicy Request, CollectionState State, IActorRef ReplyTo);

    private readonly IPolicyEngine _engine;
    private readonly PolicyDirectories _dirs;
    private readonly IActorRef _qubes;
    private readonly TimeSpan _debounce;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ILoggingAdapter _policyLog = Logging.GetLogger(Context.System, "policy");
    private readonly List<FileSystemWatcher> _watchers = [];
    private IActorRef _decisions = ActorRefs.Nobody;
    private ILoadedPolicy? _policy;
    private PolicySyntaxException? _error;
    private DateTimeOffset _since;
    private int _loads;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IPolicyEngine engine, PolicyDirectories dirs, IActorRef qubes, IActorRef journal, TimeSpan? debounce = null) =>
        Akka.Actor.Props.Create(() => new PolicyActor(engine, dirs, qubes, journal, debounce ?? TimeSpan.FromMilliseconds(200)));

    public PolicyActor(IPolicyEngine engine, PolicyDirectories dirs, IActorRef qubes, IActorRef journal, TimeSpan debounce)
    {
        _engine = engine;
        _dirs = dirs;
        _qubes = qubes;
        _debounce = debounce;
        _decisions = Context.ActorOf(PolicyDecisionLog.Props(journal), "decisions");

        Receive<EvaluatePolicy>(m =>
        {
            if (m.State is { } state)
            {
                Evaluate(m, state, Sender);
                return;
            }
            var replyTo = Sender;
            _qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), TimeSpan.FromSeconds(30))
                .PipeTo(Self, success: s => new Decide(m, s.State, replyTo), failure: e => new CollectionFailed(m, e, replyTo));
        });
        Receive<Decide>(m => Evaluate(m.Request, m.State, m.ReplyTo));
        Receive<DryRunPolicy>(m =>
        {
            var replyTo = Sender;
            _qubes.Ask<QubesProtocol.CollectionSnapshot>(new QubesProtocol.GetCollection(), TimeSpan.FromSeconds(30))
                .PipeTo(Self, success: s => new DryRunWith(m, s.State, replyTo), failure: e => new Status.Failure(e));
        });
        Receive<DryRunWith>(m => m.ReplyTo.Tell(DryRun(m.Request, m.State)));
        Receive<CollectionFailed>(m =>
        {
            // No view of the qubes: deny, as upstream does when it cannot get the system info.
            _policyLog.Error("qrexec: {0}{1}: {2} -> {3}: error getting system info: {4}", m.Request.Request.Service, m.Request.Request.Argument,
                m.Request.Request.Source, m.Request.Request.RequestedTarget, m.Error.Message);
            var denied = new PolicyDecision(PolicyResult.Deny, null, null, false, false, [], null, "error getting system info", null, m.Request.Request.RequestedTarget);
            m.ReplyTo.Tell(new PolicyOutcome(denied, denied, PolicyExecution.Deny, []));
        });
        Receive<FilesChanged>(_ => Timers.StartSingleTimer("reload", new ReloadPolicy(), _debounce));
        Receive<ReloadPolicy>(_ =>
        {
            Load();
            Sender.Tell(Status());
        });
        Receive<GetPolicyStatus>(_ => Sender.Tell(Status()));
        Receive<RecordDom0Call>(m => _decisions.Tell(new PolicyDecisionRecorded(
            m.Request.Service, m.Request.Argument, m.Request.Source, m.Request.RequestedTarget, m.Request.RequestedTarget, m.Target,
            "allow", "Allow", Dom0CallReason, null, null, m.Caller, "")
        {
            Time = DateTimeOffset.UtcNow,
            Cause = new EventCause(EventCause.PolicyKind, m.Caller, $"{m.Request.Service}{m.Request.Argument}"),
        }));
        Receive<ListPolicyFiles>(m => Reply(() => PolicyFiles.List(_dirs, m.Kind)));
        Receive<GetPolicyFile>(m => Reply(() => PolicyFiles.Get(_dirs, m.Kind, m.Name)));
        Receive<ChangePolicyFile>(m => Reply(() =>
        {
            if (PolicyFiles.Apply(_dirs, _engine, m.Change) is { } loaded)
                Swap(loaded, null);
            else
                Load();
            // upstream's policy-admin.log line
            _policyLog.Info("{0}+{1} ({2})", m.Method, m.Change.Name, m.Caller);
            return "";
        }));
    }

    private PolicyStatus Status() => new(_policy is not null, _error?.Message, _since, _loads);

    private void Reply(Func<string> operation)
    {
        try
        {
            Sender.Tell(new PolicyAdminReply(operation()));
        }
        catch (QubesError e)
        {
            Sender.Tell(new PolicyAdminReply("", e));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Sender.Tell(new PolicyAdminReply("", new QubesError($"policy files: {e.Message}")));
        }
    }

    private PolicyDecision DryRun(DryRunPolicy m, CollectionState state)
    {
        var system = SystemInfoBuilder.Of(state);
        try
        {
            if (_policy is not { } policy)
                return _engine.ParseError(_error ?? new PolicySyntaxException("<policy>", 0, "policy not loaded"), m.Request);
            var decision = policy.Evaluate(m.Request, system);
            if (decision.Result == PolicyResult.Ask && m.AskAnswer is { } answer)
                decision = policy.Answer(decision, m.Request, system, answer.StartsWith("allow:", StringComparison.Ordinal) ? answer["allow:".Length..] : null);
            return decision;
        }
        catch (PolicySyntaxException e)
        {
            return _engine.ParseError(e, m.Request);
        }
    }

    private void Evaluate(EvaluatePolicy m, CollectionState state, IActorRef replyTo)
    {
        var system = SystemInfoBuilder.Of(state);
        PolicyOutcome outcome;
        try
        {
            outcome = PolicyExecution.Run(_engine, _policy, _error, m.Request, system, m.Options);
        }
        catch (PolicySyntaxException e)
        {
            // The request itself is malformed (e.g. a target token no caller may name): upstream logs it as a load error.
            var error = _engine.ParseError(e, m.Request);
            outcome = new PolicyOutcome(error, error, PolicyExecution.Deny, [new PolicyLogLine(true, _engine.LogLine(m.Request, error))]);
        }
        replyTo.Tell(outcome);
        foreach (var line in outcome.LogLines)
            if (line.Error)
                _policyLog.Error("{0}", line.Text);
            else
                _policyLog.Info("{0}", line.Text);
        _decisions.Tell(Record(m, outcome));
    }

    public const string Dom0CallReason = "call from dom0, which the qrexec policy does not restrict";

    private static PolicyDecisionRecorded Record(EvaluatePolicy m, PolicyOutcome outcome)
    {
        var final = outcome.Final;
        return new PolicyDecisionRecorded(
            m.Request.Service, m.Request.Argument, m.Request.Source, m.Request.RequestedTarget, final.RequestedTarget,
            outcome.Allowed ? final.Target : null,
            outcome.Allowed ? "allow" : "deny",
            outcome.Evaluated.Result.ToString(),
            final.Reason,
            final.Matched?.File, final.Matched?.Line,
            m.Caller,
            outcome.LogLines.IsEmpty ? "" : outcome.LogLines[^1].Text)
        {
            Time = DateTimeOffset.UtcNow,
            Cause = new EventCause(EventCause.PolicyKind, m.Caller, $"{m.Request.Service}{m.Request.Argument}"),
        };
    }

    protected override void PreStart()
    {
        Directory.CreateDirectory(_dirs.RuntimeDir);
        Directory.CreateDirectory(_dirs.IncludeDir);
        foreach (var dir in _dirs.LoadOrder.Distinct().Where(Directory.Exists))
        {
            var watcher = new FileSystemWatcher(dir) { IncludeSubdirectories = true, NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size };
            var self = Self;
            FileSystemEventHandler changed = (_, _) => self.Tell(new FilesChanged());
            watcher.Changed += changed;
            watcher.Created += changed;
            watcher.Deleted += changed;
            watcher.Renamed += (_, _) => self.Tell(new FilesChanged());
            // A lost inotify queue may hide a change: reload to be sure.
            watcher.Error += (_, _) => self.Tell(new FilesChanged());
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
        Load();
    }

    protected override void PostStop()
    {
        foreach (var w in _watchers)
            w.Dispose();
    }

    private void Load()
    {
        try
        {
            Swap(_engine.LoadDirectories(_dirs.LoadOrder), null);
        }
        catch (PolicySyntaxException e)
        {
            Swap(null, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Swap(null, new PolicySyntaxException(_dirs.RuntimeDir, 0, e.Message));
        }
    }

    private void Swap(ILoadedPolicy? policy, PolicySyntaxException? error)
    {
        var wasError = _error?.Message;
        _policy = policy;
        _error = error;
        _since = DateTimeOffset.UtcNow;
        _loads++;
        if (error is not null)
        {
            if (wasError != error.Message)
                _log.Error("error loading policy: {0} (every qrexec call is denied until it is fixed)", error.Message);
        }
        else
            _log.Info("policy loaded from {0} and {1}", _dirs.RuntimeDir, _dirs.ConfigDir);
    }
}
