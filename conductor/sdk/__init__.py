"""What plugin authors build against: c/conductor_plugin.h and the rust/ crate (package data)."""

__all__: list[str] = []
