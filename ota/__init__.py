"""Update client and release tooling (TUF-verified, A/B slots); not built yet, see docs/ARCHITECTURE.md."""
