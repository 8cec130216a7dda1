namespace QubesActors.AdminApi;

/// <summary>Placeholder until the wire protocol lands (keeps the project buildable).</summary>
internal static class AdminApiAssembly;
