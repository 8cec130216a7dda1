namespace QubesActors.Core.Errors;

/// <summary>
/// Errors as qubesd reports them: the wire carries <see cref="QubesClassName"/> and the message, so both
/// follow upstream's <c>qubes/exc.py</c> exactly (docs/qubes-semantics.md §7).
/// </summary>
public class QubesError : Exception
{
    public QubesError(string message) : base(message) { }

    /// <summary>The exception class name sent on the wire (e.g. <c>QubesVMNotHaltedError</c>).</summary>
    public virtual string QubesClassName => "QubesException";
}

public class QubesVMError(string message) : QubesError(message)
{
    public override string QubesClassName => "QubesVMError";
}

public sealed class QubesVMNotFoundError(string name) : QubesError($"No such domain: '{name}'")
{
    public string QubeName { get; } = name;
    public override string QubesClassName => "QubesVMNotFoundError";
}

public sealed class QubesVMAlreadyExistsError(string message) : QubesError(message)
{
    public static QubesVMAlreadyExistsError ForName(string name) => new($"Qube already exists: {name}");
    public override string QubesClassName => "QubesVMAlreadyExistsError";
}

public sealed class QubesVMInUseError(string message) : QubesVMError(message)
{
    public static QubesVMInUseError Default(string name) => new($"Domain is in use: '{name}'");
    public override string QubesClassName => "QubesVMInUseError";
}

public class QubesVMNotStartedError(string message) : QubesVMError(message)
{
    public static QubesVMNotStartedError Default(string name) => new($"Domain is powered off: '{name}'");
    public override string QubesClassName => "QubesVMNotStartedError";
}

public sealed class QubesVMNotRunningError(string message) : QubesVMNotStartedError(message)
{
    public static new QubesVMNotRunningError Default(string name) => new($"Domain not running (either powered off or paused): '{name}'");
    public override string QubesClassName => "QubesVMNotRunningError";
}

public sealed class QubesVMNotPausedError(string message) : QubesVMNotStartedError(message)
{
    public static new QubesVMNotPausedError Default(string name) => new($"Domain is not paused: '{name}'");
    public override string QubesClassName => "QubesVMNotPausedError";
}

public sealed class QubesVMNotHaltedError(string message) : QubesVMError(message)
{
    public static QubesVMNotHaltedError Default(string name) => new($"Domain is not powered off: '{name}'");
    public override string QubesClassName => "QubesVMNotHaltedError";
}

public sealed class QubesVMNotSuspendedError(string message) : QubesVMError(message)
{
    public static QubesVMNotSuspendedError Default(string name) => new($"Domain is not suspended: '{name}'");
    public override string QubesClassName => "QubesVMNotSuspendedError";
}

public sealed class QubesVMShutdownTimeoutError(string message) : QubesVMError(message)
{
    public static QubesVMShutdownTimeoutError Default(string name) => new($"Domain shutdown timed out: '{name}'");
    public override string QubesClassName => "QubesVMShutdownTimeoutError";
}

public sealed class QubesNoTemplateError(string message) : QubesVMError(message)
{
    public override string QubesClassName => "QubesNoTemplateError";
}

public sealed class QubesMemoryError(string message) : QubesVMError(message)
{
    public override string QubesClassName => "QubesMemoryError";
}

public class QubesValueError(string message) : QubesError(message)
{
    public override string QubesClassName => "QubesValueError";
}

public sealed class QubesPropertyValueError(string message) : QubesValueError(message)
{
    public static QubesPropertyValueError Default(string qube, string property, string value) =>
        new($"Invalid value '{value}' for property '{property}' of {qube}");
    public override string QubesClassName => "QubesPropertyValueError";
}

public sealed class QubesNoSuchPropertyError(string message) : QubesError(message)
{
    public static QubesNoSuchPropertyError Default(string qube, string property) => new($"Invalid property '{property}' of {qube}");
    public override string QubesClassName => "QubesNoSuchPropertyError";
}

public sealed class QubesFeatureNotFoundError(string qube, string feature) : QubesError($"Feature not set for domain {qube}: {feature}")
{
    public override string QubesClassName => "QubesFeatureNotFoundError";
}

public sealed class QubesTagNotFoundError(string qube, string tag) : QubesError($"Tag not set for domain {qube}: {tag}")
{
    public override string QubesClassName => "QubesTagNotFoundError";
}

public sealed class QubesLabelNotFoundError(string label) : QubesError($"Label does not exist: {label}")
{
    public override string QubesClassName => "QubesLabelNotFoundError";
}

public sealed class QubesLabelInUseError(string label) : QubesError($"Label is in use: {label}")
{
    public override string QubesClassName => "QubesLabelInUseError";
}

public sealed class QubesNotImplementedError(string message) : QubesError(message)
{
    public override string QubesClassName => "QubesNotImplementedError";
}

public sealed class DeviceNotAssigned(string message) : QubesError(message)
{
    public override string QubesClassName => "DeviceNotAssigned";
}

public sealed class DeviceNotFound(string message) : QubesError(message)
{
    public override string QubesClassName => "DeviceNotFound";
}

public sealed class DeviceAlreadyAttached(string message) : QubesError(message)
{
    public override string QubesClassName => "DeviceAlreadyAttached";
}

public sealed class DeviceAlreadyAssigned(string message) : QubesError(message)
{
    public override string QubesClassName => "DeviceAlreadyAssigned";
}

public sealed class UnrecognizedDevice(string message) : QubesError(message)
{
    public override string QubesClassName => "UnrecognizedDevice";
}

/// <summary>Malformed request; outside the QubesException hierarchy upstream, and so here by name only.</summary>
public class ProtocolError(string message) : QubesError(message)
{
    public override string QubesClassName => "ProtocolError";
}

public sealed class QubesInvalidTagError(string message) : ProtocolError(message)
{
    public override string QubesClassName => "QubesInvalidTagError";
}

public sealed class QubesUnrecognizedDeviceAssignmentMode(string message) : ProtocolError(message)
{
    public override string QubesClassName => "QubesUnrecognizedDeviceAssignmentMode";
}

public sealed class PermissionDenied(string message) : QubesError(message)
{
    public override string QubesClassName => "PermissionDenied";
}
