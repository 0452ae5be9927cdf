"""Which mapping an event fires (SPEC §7): the current mode's mappings, then the global ones;
the first whose trigger matches wins. One rule, used by `run` (the dispatcher) and `learn`."""

from __future__ import annotations

from conductor.engine.config import Config, Mapping
from conductor.engine.triggers import LongPress, TriggerMatcher
from conductor.midi.events import MidiEvent


class MappingSelector:
    """Picks the mapping for each event in order, keeping the trigger matcher's memory (held
    notes, taps, chords) across them. Not thread-safe: the caller serialises events."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.matcher = TriggerMatcher(config.advanced)
        # Mode mappings first, then global ones, per mode: built once, not on every event.
        self._by_mode = [mode.mappings + config.global_mappings for mode in config.modes]
        self._long_presses = [m for m in config.all_mappings() if isinstance(m.trigger, LongPress)]

    @property
    def has_long_presses(self) -> bool:
        return bool(self._long_presses)

    def select(self, event: MidiEvent, mode_index: int) -> Mapping | None:
        """The mapping `event` fires in the mode, if any; the event is remembered either way."""
        matched = next(
            (m for m in self._by_mode[mode_index] if self.matcher.matches(m.trigger, event)), None
        )
        self.matcher.observe(event, matched.trigger if matched else None)
        if matched is not None and isinstance(matched.trigger, LongPress):
            self.matcher.mark_long_press_fired(matched.trigger, event)
        return matched

    def due(self, mode_index: int, now_ms: float, wall_ms: int) -> list[tuple[Mapping, MidiEvent]]:
        """Long presses of the mode whose threshold passed while the note is still held, each
        with the note-on event that stands for it."""
        active = set(map(id, self._by_mode[mode_index]))
        mappings = [m for m in self._long_presses if id(m) in active]
        triggers = [m.trigger for m in mappings if isinstance(m.trigger, LongPress)]
        return [
            (next(m for m in mappings if m.trigger is trigger), event)
            for trigger, event in self.matcher.due_long_presses(triggers, now_ms, wall_ms)
        ]
