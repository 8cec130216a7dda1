// The sandbox backend is Linux-only (namespaces, cgroups, overlayfs).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
