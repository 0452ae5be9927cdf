"""What an owner closes: the plugin host, each plugin, each MIDI input. As wasmtime-py's
managed objects and mido's ports: `close()` is idempotent and `with` closes on leaving."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class Owned(abc.ABC):
    @abc.abstractmethod
    def close(self) -> None:
        """Release what this holds; harmless when already closed."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
