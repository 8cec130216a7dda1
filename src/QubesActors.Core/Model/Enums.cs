namespace QubesActors.Core.Model;

public enum QubeClass
{
    AdminVM,
    TemplateVM,
    AppVM,
    StandaloneVM,
    DispVM,
}

/// <summary>Power states with qubesd's exact spellings (docs/qubes-semantics.md §2).</summary>
public enum PowerState
{
    Halted,
    Transient,
    Running,
    Paused,
    Suspended,
    Halting,
    Dying,
    Crashed,
    NA,
}

/// <summary>How a qube came to stop.</summary>
public enum StopKind
{
    Shutdown,
    Killed,
    Crashed,
}

/// <summary>Restart types, after OTP and systemd (DESIGN.md, restart policy).</summary>
public enum RestartType
{
    /// <summary>Always restarted when it stops unasked.</summary>
    Permanent,
    /// <summary>Restarted only after a crash.</summary>
    Transient,
    /// <summary>Never restarted.</summary>
    Temporary,
}

public static class PowerStateExtensions
{
    /// <summary>qubesd's <c>is_running()</c>: true for every active state, not only Running.</summary>
    public static bool IsActive(this PowerState state) => state is not (PowerState.Halted or PowerState.NA);

    public static string Wire(this PowerState state) => state.ToString();

    public static bool HasTemplate(this QubeClass cls) => cls is QubeClass.AppVM or QubeClass.DispVM;

    public static string RestartTypeName(this RestartType type) => type.ToString().ToLowerInvariant();
}
