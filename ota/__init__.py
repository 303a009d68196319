"""Update client and release tooling (TUF, A/B slots); not built yet (docs/ARCHITECTURE.md)."""
