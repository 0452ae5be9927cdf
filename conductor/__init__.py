"""Conductor: MIDI events in, sandboxed WebAssembly plugins out.

The package is the library both CLIs are thin shells over; import from the subpackages.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
