"""Central operations side: fleet monitor, command sender; not built yet (docs/ARCHITECTURE.md)."""
