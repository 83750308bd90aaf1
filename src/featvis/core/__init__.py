"""Shared core: hooks, io, registry, device, figures, runtime and the resolved config. Imports no stage."""
