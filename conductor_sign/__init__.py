"""`conductor-sign`: the key and trust command line over `conductor.signing`."""

__all__: list[str] = []
