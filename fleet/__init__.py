"""Central operations side: fleet monitor, command sender; not built yet, see docs/ARCHITECTURE.md."""
