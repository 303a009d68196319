"""Device drivers: one sub-package per device kind, each a pure protocol plus a driver."""
