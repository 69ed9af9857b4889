"""Node implementations, one module per family. Importable without torch (see registry)."""
