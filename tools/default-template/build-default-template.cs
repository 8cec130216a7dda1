#:project ../../src/QubesActors.Sandbox/QubesActors.Sandbox.csproj
#:property PublishAot=false
#:property JsonSerializerIsReflectionEnabledByDefault=true
// Builds the default template for real (debootstrap --variant=minbase: minutes, ~40 MB download) into a storage
// root, times it, then starts an AppVM sandbox on it and runs bash inside: the check the unit tests (fake debootstrap)
// cannot make. Run as root: tools/default-template/build-default-template.sh [STORAGE] [SUITE]
using System.Diagnostics;
using QubesActors.Core.Model;
using QubesActors.Sandbox;
using QubesActors.Sandbox.Cgroups;
using QubesActors.Sandbox.Storage;

if (!OperatingSystem.IsLinux())
    return 2;
var storage = args.Length > 0 ? args[0] : "/var/tmp/qa-default-template";
var suite = args.Length > 1 ? args[1] : "bookworm";
const string template = "debian-12-minimal";
var root = SandboxVolumes.TemplateRoot(storage, template);

var clock = Stopwatch.StartNew();
var built = await DebootstrapTemplate.EnsureAsync(root, suite);
Console.WriteLine(built ? $"built {root} in {clock.Elapsed.TotalSeconds:0.0} s" : $"{root} was complete already");
var du = Process.Start(new ProcessStartInfo("du", ["-sh", "--apparent-size", root]) { RedirectStandardOutput = true })!;
Console.WriteLine($"size: {du.StandardOutput.ReadToEnd().Split('\t')[0]}");

// A qube on it: an AppVM whose boot script reports what bash, Debian and its hostname say.
var manager = new SandboxManager(storage, CgroupLayout.Detect(parent: "qubes-actors-tool"));
const string qube = "template-probe";
var boot = Path.Combine(storage, "qubes", qube, "private", "boot.sh");
Directory.CreateDirectory(Path.GetDirectoryName(boot)!);
File.WriteAllText(boot, "#!/bin/sh\nbash -c 'echo \"bash $BASH_VERSION, debian $(cat /etc/debian_version), hostname $(hostname), $(grep -c nameserver /etc/resolv.conf) nameservers\"' > /run/qubes/probe.tmp\nmv /run/qubes/probe.tmp /run/qubes/probe\n");
File.SetUnixFileMode(boot, (UnixFileMode)Convert.ToInt32("755", 8));
clock.Restart();
await manager.StartAsync(new SandboxSpec(qube, QubeClass.AppVM, template, 256), CancellationToken.None);
Console.WriteLine($"{qube} running after {clock.Elapsed.TotalMilliseconds:0} ms (init pid {manager.InitPidOf(qube)})");
var probe = Path.Combine(storage, "qubes", qube, "run", "probe");
while (!File.Exists(probe) && clock.Elapsed < TimeSpan.FromSeconds(30))
    await Task.Delay(20);
Console.WriteLine(File.Exists(probe) ? $"inside: {File.ReadAllText(probe).Trim()}" : "inside: no answer within 30 s");
await manager.ShutdownAsync(qube, TimeSpan.FromSeconds(10), CancellationToken.None);
Console.WriteLine($"{qube} shut down");
return File.Exists(probe) ? 0 : 1;
