using System.Collections.Immutable;
using System.Globalization;
using QubesActors.Core.Devices;
using QubesActors.Core.Errors;
using QubesActors.Core.Events;
using QubesActors.Core.Model;

namespace QubesActors.Core.Rules;

/// <summary>
/// Pure decisions about the collection: given the current state and an untrusted request, the events to persist
/// or the Qubes error to return (docs/qubes-semantics.md §1–§3, §7). Nothing here touches a qube's power state.
/// </summary>
public static class CollectionRules
{
    public static QubeCreated CreateQube(
        CollectionState c, QubeClass cls, string untrustedName, string untrustedLabel, string? untrustedTemplate,
        IReadOnlyDictionary<string, string> untrustedProperties, EventCause cause, DateTimeOffset now, Guid uuid,
        int? dispId = null)
    {
        if (cls == QubeClass.AdminVM)
            throw new QubesValueError("Cannot create another AdminVM");
        var name = QubeName.Validate(untrustedName);
        if (c.Find(name) is not null)
            throw QubesVMAlreadyExistsError.ForName(name);
        var label = Label.Resolve(c.Labels, untrustedLabel);

        var properties = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        if (cls.HasTemplate())
        {
            var templateName = string.IsNullOrEmpty(untrustedTemplate)
                ? (cls == QubeClass.DispVM ? c.GlobalEffective("default_dispvm") : c.GlobalEffective("default_template"))
                : untrustedTemplate;
            if (templateName is null)
                throw new QubesValueError("Template for the qube not specified, nor default template set.");
            var template = c.Get(templateName);
            CheckTemplateClass(cls, template, name);
            properties["template"] = template.Name;
        }
        else if (!string.IsNullOrEmpty(untrustedTemplate))
            throw new QubesValueError($"{cls} does not take a template");

        var draft = new QubeState { Uuid = uuid, Name = name, Class = cls, Qid = 0, Label = label.Name, DispId = dispId, Properties = properties.ToImmutable() };
        var qid = c.NextQid();
        draft = draft with { Qid = qid };
        var withDraft = c.WithQube(draft);
        foreach (var (untrustedKey, untrustedValue) in untrustedProperties)
        {
            if (untrustedKey is "name" or "label" or "template")
                continue;
            var value = ValidatePropertyValue(withDraft, draft, untrustedKey, untrustedValue);
            draft = draft with { Properties = draft.Properties.SetItem(untrustedKey, value) };
            withDraft = withDraft.WithQube(draft);
        }

        return new QubeCreated(uuid, name, cls, qid, label.Name, draft.Properties,
            ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<string, string>.Empty, null, dispId)
        { Time = now, Cause = cause };
    }

    /// <summary>
    /// admin.vm.CreateDisposable: a DispVM named disp&lt;dispid&gt; copying the template's cloneable properties,
    /// tags, features (but not preload-dispvm*) and firewall (§3.4).
    /// </summary>
    public static QubeCreated CreateDisposable(CollectionState c, string baseName, string callerName, EventCause cause, DateTimeOffset now, Guid uuid, int dispId)
    {
        var template = c.Get(baseName);
        if (template.Class is not (QubeClass.AppVM or QubeClass.StandaloneVM) || !c.EffectiveBool(template, "template_for_dispvms"))
            throw new QubesValueError("Refusing to create disposable out of app qube which has template_for_dispvms=False");
        var name = $"disp{dispId}";
        var properties = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach (var def in QubeProperties.For(QubeClass.DispVM).Where(d => d.CopiedToDisposable))
            if (template.Properties.TryGetValue(def.Name, out var v))
                properties[def.Name] = v;
        properties["template"] = template.Name;
        properties["auto_cleanup"] = "True";
        var features = template.Features.RemoveRange(template.Features.Keys.Where(k => k.StartsWith("preload-dispvm", StringComparison.Ordinal)));
        var tags = template.Tags.Add($"created-by-{callerName}").Add($"disp-created-by-{callerName}");
        return new QubeCreated(uuid, name, QubeClass.DispVM, c.NextQid(), template.Label, properties.ToImmutable(), tags, features, template.Firewall, dispId)
        { Time = now, Cause = cause };
    }

    private static void CheckTemplateClass(QubeClass cls, QubeState template, string qubeName)
    {
        if (cls == QubeClass.AppVM && template.Class != QubeClass.TemplateVM)
            throw new QubesPropertyValueError($"wrong VM class: domains['{template.Name}'] is of type {template.Class} and not TemplateVM");
        if (cls == QubeClass.DispVM && (template.Class is not (QubeClass.AppVM or QubeClass.StandaloneVM)
                                         || !(template.Properties.TryGetValue("template_for_dispvms", out var t) && PropertyValues.ParseBool(t))))
            throw new QubesPropertyValueError($"Invalid value '{template.Name}' for property 'template' of {qubeName}: template_for_dispvms=False");
    }

    /// <summary>Validates and normalises a value for a qube property; returns the text to store.</summary>
    public static string ValidatePropertyValue(CollectionState c, QubeState qube, string untrustedName, string untrustedValue)
    {
        var def = QubeProperties.Get(qube, untrustedName);
        if (def.ReadOnly || def.WriteOnce)
            throw new QubesValueError($"Property '{def.Name}' of {qube.Name} is read-only");
        var value = NormalizeScalar(def, qube.Name, untrustedValue);
        switch (def.Type)
        {
            case PropertyType.Label:
                value = Label.Resolve(c.Labels, untrustedValue).Name;
                break;
            case PropertyType.Vm:
                value = ValidateVmReference(c, qube, def, untrustedValue);
                break;
            case PropertyType.Str:
                foreach (var ch in untrustedValue)
                    if (ch < 0x20 || ch > 0x7e)
                        throw QubesPropertyValueError.Default(qube.Name, def.Name, untrustedValue);
                break;
        }

        switch (def.Name)
        {
            case "provides_network" when value == "False" && qube.Class != QubeClass.AdminVM
                                         && c.Qubes.Values.Any(q => q.Properties.TryGetValue("netvm", out var n) && n == qube.Name
                                                                    || q.Name != qube.Name && !q.Properties.ContainsKey("netvm") && c.Effective(q, "netvm") == qube.Name):
                throw new QubesValueError("The qube is still used by other qubes, change theirs 'netvm' first");
            case "template_for_dispvms" when value == "False":
                CheckNotUsedAsDispTemplate(c, qube);
                break;
            case "virt_mode":
                value = value.ToLowerInvariant();
                if (value is not ("hvm" or "pv" or "pvh"))
                    throw QubesPropertyValueError.Default(qube.Name, def.Name, untrustedValue);
                if (value == "pvh" && qube.Assignments.Values.Any(a => a.DeviceClass == "pci"))
                    throw new QubesPropertyValueError("pvh mode can't be set if pci devices are attached");
                break;
            case "kernelopts" when value.Length > 512:
                throw QubesPropertyValueError.Default(qube.Name, def.Name, untrustedValue);
            case "restart":
                if (value is not ("permanent" or "transient" or "temporary"))
                    throw QubesPropertyValueError.Default(qube.Name, def.Name, untrustedValue);
                break;
            case "devices_denied":
                // Whole interface patterns only, so that the list always splits back into codes.
                try
                {
                    DeviceInterfaces.Split(value);
                }
                catch (QubesError)
                {
                    throw QubesPropertyValueError.Default(qube.Name, def.Name, untrustedValue);
                }
                break;
        }
        return value;
    }

    /// <summary>
    /// Booleans and integers in their canonical text (<c>True</c>, <c>42</c>); anything else as given. Integers must be
    /// positive, except where 0 means "off" (<c>maxmem</c>: no balancing; <c>restart_intensity</c>: no restart).
    /// </summary>
    private static string NormalizeScalar(PropertyDef def, string owner, string untrustedValue)
    {
        switch (def.Type)
        {
            case PropertyType.Bool:
                return PropertyValues.Bool(PropertyValues.ParseBool(untrustedValue));
            case PropertyType.Int:
                var number = PropertyValues.ParseInt(untrustedValue, owner, def.Name);
                if (number < (def.Name is "maxmem" or "restart_intensity" ? 0 : 1))
                    throw QubesPropertyValueError.Default(owner, def.Name, untrustedValue);
                return number.ToString(CultureInfo.InvariantCulture);
            default:
                return untrustedValue;
        }
    }

    private static string ValidateVmReference(CollectionState c, QubeState qube, PropertyDef def, string untrustedValue)
    {
        if (untrustedValue is "" or "none" or "None")
        {
            if (!def.AllowNone)
                throw new QubesPropertyValueError($"Property '{def.Name}' of {qube.Name} cannot be set to none");
            return "";
        }
        var target = c.Find(untrustedValue)
                     ?? throw new QubesPropertyValueError($"Can't set {def.Name} to non-existing qube {untrustedValue}");
        switch (def.Name)
        {
            case "netvm":
                if (!c.ProvidesNetwork(target))
                    throw new QubesValueError($"The {target.Name} qube does not provide network");
                if (CreatesLoop(c, qube.Name, target.Name))
                    throw new QubesValueError("Loops in network are unsupported");
                break;
            case "template":
                if (qube.Power.IsActive())
                    throw new QubesVMNotHaltedError("Cannot change template while qube is running");
                CheckTemplateClass(qube.Class, target, qube.Name);
                if (qube.Class == QubeClass.AppVM && c.EffectiveBool(qube, "template_for_dispvms")
                    && c.Qubes.Values.Any(d => d.Class == QubeClass.DispVM && d.Power.IsActive() && d.Properties.GetValueOrDefault("template") == qube.Name))
                    throw new QubesVMInUseError($"Cannot change template while there are running disposables based on {qube.Name}");
                break;
            case "default_dispvm" or "management_dispvm":
                if (!IsDispTemplate(c, target))
                    throw new QubesPropertyValueError($"Invalid value '{target.Name}' for property '{def.Name}' of {qube.Name}: template_for_dispvms=False");
                break;
        }
        return target.Name;
    }

    private static bool IsDispTemplate(CollectionState c, QubeState q) =>
        q.Class is QubeClass.AppVM or QubeClass.StandaloneVM && c.EffectiveBool(q, "template_for_dispvms");

    /// <summary>True when making <paramref name="netvm"/> the netvm of <paramref name="qube"/> closes a cycle.</summary>
    public static bool CreatesLoop(CollectionState c, string qube, string netvm)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (string? current = netvm; current is not null; )
        {
            if (current == qube || !seen.Add(current))
                return true;
            var q = c.Find(current);
            current = q is null || q.Class == QubeClass.AdminVM ? null : c.Effective(q, "netvm");
        }
        return false;
    }

    /// <summary>The first qube (by name) that lies on a netvm loop, or null when the graph has no loop.</summary>
    public static string? FindLoop(CollectionState c)
    {
        foreach (var q in c.Qubes.Values.OrderBy(q => q.Name, StringComparer.Ordinal))
            if (OnLoop(c, q))
                return q.Name;
        return null;
    }

    /// <summary>True when following the netvm chain from <paramref name="qube"/> comes back to it.</summary>
    private static bool OnLoop(CollectionState c, QubeState qube)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var current = c.NetVmOf(qube); current is not null && current.Class != QubeClass.AdminVM; current = c.NetVmOf(current))
        {
            if (current.Name == qube.Name)
                return true;
            if (!seen.Add(current.Name))
                return false;
        }
        return false;
    }

    private static void CheckNotUsedAsDispTemplate(CollectionState c, QubeState qube)
    {
        var users = new List<string>();
        foreach (var g in new[] { "default_dispvm", "management_dispvm" })
            if (c.GlobalEffective(g) == qube.Name)
                users.Add($"global {g}");
        foreach (var q in c.Qubes.Values.Where(q => q.Name != qube.Name))
        {
            foreach (var p in new[] { "default_dispvm", "management_dispvm" })
                if (q.Properties.GetValueOrDefault(p) == qube.Name)
                    users.Add($"{q.Name} {p}");
            if (q.Class == QubeClass.DispVM && q.Properties.GetValueOrDefault("template") == qube.Name)
                users.Add($"{q.Name} template");
        }
        if (users.Count > 0)
            throw new QubesVMInUseError($"Cannot change template_for_dispvms to False while it is used by: {string.Join(", ", users)}");
    }

    public static QubeEvent SetProperty(CollectionState c, string qubeName, string untrustedName, string untrustedValue, EventCause cause, DateTimeOffset now)
    {
        var qube = c.Get(qubeName);
        var value = ValidatePropertyValue(c, qube, untrustedName, untrustedValue);
        // A live netvm change needs the new netvm up (§3.1).
        if (untrustedName == "netvm" && qube.Power.IsActive() && value.Length > 0 && c.Find(value) is { } netvm && !netvm.Power.IsActive())
            throw new QubesVMNotStartedError($"Cannot dynamically attach to stopped qube {netvm.Name}");
        return new QubePropertySet(untrustedName, value) { Time = now, Cause = cause };
    }

    public static QubeEvent ResetProperty(CollectionState c, string qubeName, string untrustedName, EventCause cause, DateTimeOffset now)
    {
        var qube = c.Get(qubeName);
        var def = QubeProperties.Get(qube, untrustedName);
        if (def.ReadOnly || def.WriteOnce || def.Name is "label" or "template")
            throw new QubesValueError($"Property '{def.Name}' of {qube.Name} has no default to reset to");
        var after = c.WithQube(qube with { Properties = qube.Properties.Remove(def.Name) });
        var afterQube = after.Get(qube.Name);
        switch (def.Name)
        {
            case "netvm" when after.Effective(afterQube, "netvm") is { } n:
                if (CreatesLoop(after, qube.Name, n))
                    throw new QubesValueError("Loops in network are unsupported");
                if (qube.Power.IsActive() && after.Find(n) is { } netvm && !netvm.Power.IsActive())
                    throw new QubesVMNotStartedError($"Cannot dynamically attach to stopped qube {netvm.Name}");
                break;
            case "provides_network":
                ValidatePropertyValue(c, qube, def.Name, after.Effective(afterQube, def.Name) ?? "False");
                break;
            case "template_for_dispvms":
                CheckNotUsedAsDispTemplate(c, qube);
                break;
        }
        return new QubePropertyReset(def.Name) { Time = now, Cause = cause };
    }

    public static CollectionEvent SetGlobal(CollectionState c, string untrustedName, string untrustedValue, EventCause cause, DateTimeOffset now)
    {
        var def = GlobalProperties.Get(untrustedName);
        if (def.ReadOnly)
            throw new QubesValueError($"Property '{def.Name}' of dom0 is read-only");
        var value = NormalizeScalar(def, CollectionState.AdminName, untrustedValue);
        switch (def.Type)
        {
            case PropertyType.Vm when untrustedValue is "" or "none" or "None":
                value = "";
                break;
            case PropertyType.Vm:
                var target = c.Find(untrustedValue) ?? throw new QubesPropertyValueError($"Can't set {def.Name} to non-existing qube {untrustedValue}");
                value = target.Name;
                switch (def.Name)
                {
                    case "default_netvm":
                        if (!c.ProvidesNetwork(target))
                            throw new QubesValueError($"The {target.Name} qube does not provide network");
                        // Only qubes following the default change: name the first (by qid) that would sit on a loop.
                        var after = c with { Globals = c.Globals.SetItem(def.Name, value) };
                        if (after.Qubes.Values.Where(q => q.Class != QubeClass.AdminVM && after.IsDefault(q, "netvm"))
                                .OrderBy(q => q.Qid).FirstOrDefault(q => OnLoop(after, q)) is { } looped)
                            throw new QubesPropertyValueError($"Network loop on '{looped.Name}'");
                        break;
                    case "default_template" when target.Class != QubeClass.TemplateVM:
                        throw new QubesPropertyValueError($"wrong VM class: domains['{target.Name}'] is of type {target.Class} and not TemplateVM");
                    case "default_dispvm" or "management_dispvm" when !IsDispTemplate(c, target):
                        throw new QubesPropertyValueError($"Invalid value '{target.Name}' for property '{def.Name}' of dom0: template_for_dispvms=False");
                }
                break;
        }
        return new GlobalPropertySet(def.Name, value) { Time = now, Cause = cause };
    }

    public static CollectionEvent ResetGlobal(CollectionState c, string untrustedName, EventCause cause, DateTimeOffset now)
    {
        var def = GlobalProperties.Get(untrustedName);
        if (def.ReadOnly)
            throw new QubesValueError($"Property '{def.Name}' of dom0 is read-only");
        return new GlobalPropertyReset(def.Name) { Time = now, Cause = cause };
    }

    /// <summary>
    /// The removal refusals of §3.3 in upstream's order (dom0, installed_by_rpm, not halted, references, devices).
    /// Returns the journal detail line for a reference refusal through <paramref name="journalDetail"/>.
    /// </summary>
    public static void CheckRemove(CollectionState c, string qubeName, out string? journalDetail)
    {
        journalDetail = null;
        var qube = c.Get(qubeName);
        if (qube.Class == QubeClass.AdminVM)
            throw new QubesVMInUseError("'dom0' cannot be removed");
        if (c.EffectiveBool(qube, "installed_by_rpm"))
            throw new QubesVMInUseError($"VM installed by package manager: {qube.Name}");
        if (qube.Power.IsActive())
            throw QubesVMNotHaltedError.Default(qube.Name);
        var uses = References(c, qube.Name);
        if (uses.Count > 0)
        {
            journalDetail = $"Cannot remove {qube.Name} as it is used by {string.Join(", ", uses)}";
            throw new QubesVMInUseError($"Domain is in use: '{qube.Name}';  see 'journalctl -u qubesd -e' in dom0 for details");
        }
        var assigned = c.Qubes.Values
            .SelectMany(q => q.Assignments.Values.Where(a => a.Device.StartsWith(qube.Name + ":", StringComparison.Ordinal)))
            .Select(a => a.Device).Distinct().ToList();
        if (assigned.Count > 0)
            throw new QubesVMInUseError($"VM has devices assigned to other VMs: {string.Join(", ", assigned)}");
    }

    /// <summary>Global properties and explicit qube properties pointing at a qube, as <c>@GLOBAL:prop</c> / <c>qube:prop</c>.</summary>
    public static IReadOnlyList<string> References(CollectionState c, string qubeName)
    {
        var uses = new List<string>();
        foreach (var g in GlobalProperties.VmValued)
            if (c.GlobalEffective(g) == qubeName)
                uses.Add($"@GLOBAL:{g}");
        foreach (var q in c.Qubes.Values.Where(q => q.Name != qubeName).OrderBy(q => q.Name, StringComparer.Ordinal))
            foreach (var p in new[] { "template", "netvm", "default_dispvm", "management_dispvm", "guivm", "audiovm" })
                if (q.Properties.GetValueOrDefault(p) == qubeName)
                    uses.Add($"{q.Name}:{p}");
        return uses;
    }

    /// <param name="internalCaller">qubesd itself, which keeps the protected features (the Admin API never passes it).</param>
    public static QubeEvent SetFeature(CollectionState c, string qubeName, string untrustedFeature, string untrustedValue, EventCause cause, DateTimeOffset now,
        bool internalCaller = false)
    {
        c.Get(qubeName);
        var feature = QubeFeature.ValidateName(untrustedFeature);
        if (!internalCaller && feature is "deferred-netvm-original" or "preload-dispvm" or "preload-dispvm-completed" or "preload-dispvm-in-progress")
            throw new PermissionDenied($"Feature {feature} cannot be set through the Admin API");
        return new QubeFeatureSet(feature, QubeFeature.ValidateValue(untrustedValue)) { Time = now, Cause = cause };
    }

    public static QubeEvent RemoveFeature(CollectionState c, string qubeName, string untrustedFeature, EventCause cause, DateTimeOffset now)
    {
        var qube = c.Get(qubeName);
        if (!qube.Features.ContainsKey(untrustedFeature))
            throw new QubesFeatureNotFoundError(qube.Name, untrustedFeature);
        return new QubeFeatureRemoved(untrustedFeature) { Time = now, Cause = cause };
    }

    /// <summary>Adds a tag; null when it is already there (upstream: no event, no error).</summary>
    public static QubeEvent? AddTag(CollectionState c, string qubeName, string untrustedTag, string callerName, EventCause cause, DateTimeOffset now)
    {
        var qube = c.Get(qubeName);
        var tag = QubeTag.Validate(untrustedTag);
        if (tag.StartsWith("created-by-", StringComparison.Ordinal) && callerName != CollectionState.AdminName)
            throw new PermissionDenied("Only dom0 can set created-by-* tags");
        return qube.Tags.Contains(tag) ? null : new QubeTagAdded(tag) { Time = now, Cause = cause };
    }

    public static QubeEvent RemoveTag(CollectionState c, string qubeName, string untrustedTag, string callerName, EventCause cause, DateTimeOffset now)
    {
        var qube = c.Get(qubeName);
        if (!qube.Tags.Contains(untrustedTag))
            throw new QubesTagNotFoundError(qube.Name, untrustedTag);
        if (untrustedTag.StartsWith("created-by-", StringComparison.Ordinal) && callerName != CollectionState.AdminName)
            throw new PermissionDenied("Only dom0 can remove created-by-* tags");
        return new QubeTagRemoved(untrustedTag) { Time = now, Cause = cause };
    }

    public static CollectionEvent CreateLabel(CollectionState c, string untrustedName, string untrustedColor, EventCause cause, DateTimeOffset now)
    {
        if (!QubeTag.IsValid(untrustedName))
            throw new ProtocolError($"Invalid label name: {untrustedName}");
        if (c.Labels.Values.Any(l => l.Name == untrustedName))
            throw new QubesValueError($"label {untrustedName} already exists");
        var color = untrustedColor.Trim();
        if (!System.Text.RegularExpressions.Regex.IsMatch(color, @"\A0x[0-9a-fA-F]{6}\z"))
            throw new ProtocolError($"Invalid color: {untrustedColor}");
        var index = Math.Max(8, c.Labels.Keys.Max()) + 1;
        return new LabelCreated(index, untrustedName, color.ToLowerInvariant()) { Time = now, Cause = cause };
    }

    public static CollectionEvent RemoveLabel(CollectionState c, string untrustedName, EventCause cause, DateTimeOffset now)
    {
        var label = c.Labels.Values.FirstOrDefault(l => l.Name == untrustedName) ?? throw new QubesLabelNotFoundError(untrustedName);
        if (label.Index <= 8)
            throw new PermissionDenied("Cannot remove standard label");
        if (c.Qubes.Values.Any(q => q.Label == label.Name))
            throw new QubesLabelInUseError(label.Name);
        return new LabelRemoved(label.Name) { Time = now, Cause = cause };
    }
}
