namespace QubesActors.Runtime; internal static class Placeholder {}
