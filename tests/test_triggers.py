"""Trigger matching, timed triggers included, with the clock taken from event timestamps."""

from __future__ import annotations

import pytest

from conductor.engine import triggers as trg
from conductor.engine.triggers import AdvancedSettings, TriggerMatcher, encoder_direction
from conductor.midi.events import EventKind, MidiEvent


def on(note: int, at: float, velocity: int = 100, channel: int = 0, source: str = "") -> MidiEvent:
    return MidiEvent(EventKind.NOTE_ON, channel, at, note=note, velocity=velocity, source=source)


def off(note: int, at: float, channel: int = 0, source: str = "") -> MidiEvent:
    return MidiEvent(EventKind.NOTE_OFF, channel, at, note=note, velocity=0, source=source)


def cc(number: int, value: int, at: float = 0, channel: int = 0) -> MidiEvent:
    return MidiEvent(EventKind.CC, channel, at, cc=number, value=value)


def feed(matcher: TriggerMatcher, trigger: trg.Trigger, events: list[MidiEvent]) -> list[bool]:
    fired = []
    for event in events:
        hit = matcher.matches(trigger, event)
        fired.append(hit)
        matcher.observe(event, trigger if hit else None)
    return fired


@pytest.fixture
def matcher() -> TriggerMatcher:
    return TriggerMatcher(
        AdvancedSettings(chord_timeout_ms=50, double_tap_timeout_ms=300, hold_threshold_ms=1000)
    )


def test_note_velocity_min_and_channel(matcher: TriggerMatcher) -> None:
    trigger = trg.Note(60, velocity_min=40, channel=2)
    assert feed(
        matcher,
        trigger,
        [on(60, 0, 100, 2), on(60, 1, 39, 2), on(60, 2, 100, 3), on(61, 3, 100, 2), off(60, 4, 2)],
    ) == [True, False, False, False, False]
    assert matcher.matches(trg.Note(60), on(60, 0, 1, 15))


@pytest.mark.parametrize(
    ("velocity", "level"),
    [(1, "soft"), (40, "soft"), (41, "medium"), (80, "medium"), (81, "hard"), (127, "hard")],
)
def test_velocity_ranges(matcher: TriggerMatcher, velocity: int, level: str) -> None:
    for candidate in ("soft", "medium", "hard"):
        assert matcher.matches(trg.VelocityRange(36, candidate), on(36, 0, velocity)) is (
            candidate == level
        )


def test_long_press_fires_once_at_the_threshold_while_held(matcher: TriggerMatcher) -> None:
    trigger = trg.LongPress(42)
    matcher.observe(on(42, 1000))
    assert matcher.due_long_presses([trigger], 1999) == []
    ((fired, event),) = matcher.due_long_presses([trigger], 2000, wall_ms=77)
    assert fired is trigger
    assert (event.kind, event.note, event.velocity, event.channel) == (
        EventKind.NOTE_ON,
        42,
        100,
        0,
    )
    assert (event.time_ms, event.wall_ms) == (2000, 77)
    assert matcher.due_long_presses([trigger], 2500) == []
    assert not matcher.matches(trigger, off(42, 2600))  # already fired for this press


def test_long_press_fires_on_release_when_no_tick_came(matcher: TriggerMatcher) -> None:
    trigger = trg.LongPress(42, duration_ms=500)
    assert feed(matcher, trigger, [on(42, 0), off(42, 499), on(42, 1000), off(42, 1500)]) == [
        False,
        False,
        False,
        True,
    ]


def test_double_tap_within_the_timeout(matcher: TriggerMatcher) -> None:
    trigger = trg.DoubleTap(38)
    assert feed(matcher, trigger, [on(38, 0), off(38, 50), on(38, 250)]) == [False, False, True]
    # a third tap right after does not fire again; a fresh pair does
    assert feed(matcher, trigger, [on(38, 300), on(38, 2000), on(38, 2400), on(38, 2600)]) == [
        False,
        False,
        False,
        True,
    ]


def test_chord_needs_all_notes_within_the_timeout(matcher: TriggerMatcher) -> None:
    trigger = trg.NoteChord((36, 38, 42))
    assert feed(matcher, trigger, [on(36, 0), on(38, 20), on(42, 45)]) == [False, False, True]
    for note in (36, 38, 42):
        matcher.observe(off(note, 60))
    assert feed(matcher, trigger, [on(36, 100), on(38, 120), on(42, 200)]) == [False, False, False]
    for note in (36, 38, 42):
        matcher.observe(off(note, 300))
    assert feed(matcher, trigger, [on(36, 400), off(36, 410), on(38, 420), on(42, 430)]) == [
        False,
        False,
        False,
        False,
    ]


def test_cc_value_min_and_encoder_direction(matcher: TriggerMatcher) -> None:
    assert [matcher.matches(trg.CC(7, 64), cc(7, v)) for v in (63, 64, 127)] == [False, True, True]
    assert not matcher.matches(trg.CC(7), cc(8, 100))
    cw, ccw = trg.EncoderTurn(16, "clockwise"), trg.EncoderTurn(16, "counterclockwise")
    assert [matcher.matches(cw, cc(16, v)) for v in (1, 63, 64, 65, 127, 0)] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert [matcher.matches(ccw, cc(16, v)) for v in (1, 64, 65, 127)] == [False, False, True, True]
    assert encoder_direction(0) is None


def test_pitch_bend_and_aftertouch(matcher: TriggerMatcher) -> None:
    # The reference's units: 0-16383 with the centre at 8192 (mido's pitch 0).
    bend = trg.PitchBend(9192, 16383)
    assert [
        matcher.matches(bend, MidiEvent(EventKind.PITCH_BEND, 0, 0, value=v))
        for v in (999, 1000, 8191)
    ] == [False, True, True]
    everywhere = trg.PitchBend()
    assert all(
        matcher.matches(everywhere, MidiEvent(EventKind.PITCH_BEND, 0, 0, value=v))
        for v in (-8192, 0, 8191)
    )
    touch = trg.Aftertouch(pressure_min=50)
    assert [
        matcher.matches(touch, MidiEvent(EventKind.AFTERTOUCH, 0, 0, value=v)) for v in (49, 50)
    ] == [False, True]
    assert not matcher.matches(touch, on(1, 0))


def test_program_change_by_program_and_channel(matcher: TriggerMatcher) -> None:
    def program(number: int, channel: int = 0) -> MidiEvent:
        return MidiEvent(EventKind.PROGRAM_CHANGE, channel, 0, value=number)

    trigger = trg.ProgramChange(5)
    assert [matcher.matches(trigger, program(n)) for n in (4, 5, 6)] == [False, True, False]
    assert not matcher.matches(trigger, cc(5, 5))  # a CC carrying the same number is not it
    on_channel = trg.ProgramChange(5, channel=9)
    assert [matcher.matches(on_channel, program(5, c)) for c in (0, 9)] == [False, True]


def test_a_device_filter_takes_events_of_its_source_only(matcher: TriggerMatcher) -> None:
    pads, keys = trg.Note(60, device="pads"), trg.Note(60)
    assert [matcher.matches(pads, on(60, 0, source=s)) for s in ("pads", "keys", "")] == [
        True,
        False,
        False,
    ]
    assert matcher.matches(keys, on(60, 0, source="keys"))


def test_held_notes_taps_and_chords_are_kept_per_device(matcher: TriggerMatcher) -> None:
    chord = trg.NoteChord((36, 38))
    # 36 held on one device and 38 on another is not a chord on either
    assert feed(matcher, chord, [on(36, 0, source="a"), on(38, 10, source="b")]) == [False, False]
    assert feed(matcher, chord, [on(38, 20, source="a")]) == [True]
    tap = trg.DoubleTap(40)
    assert feed(matcher, tap, [on(40, 100, source="a"), on(40, 150, source="b")]) == [False, False]
    hold = trg.LongPress(42, device="b")
    matcher.observe(on(42, 0, source="a"))
    assert matcher.due_long_presses([hold], 5000) == []  # held on a, the trigger wants b
    matcher.observe(MidiEvent(EventKind.NOTE_ON, 0, 0, 0, "port-b", 42, 90, source="b"))
    ((_, event),) = matcher.due_long_presses([hold], 5000)
    assert (event.source, event.device, event.velocity) == ("b", "port-b", 90)


def test_gamepad_triggers_never_fire_on_midi(matcher: TriggerMatcher) -> None:
    for trigger in (
        trg.GamepadButton(128),
        trg.GamepadButtonChord((128, 129)),
        trg.GamepadAnalogStick(128, "clockwise"),
        trg.GamepadTrigger(132, 10),
    ):
        assert not any(
            matcher.matches(trigger, event)
            for event in (on(128 - 127, 0), cc(128 - 127, 127), on(0, 0))
        )


def test_an_encoder_without_a_direction_and_a_range_without_a_level_fire_either_way(
    matcher: TriggerMatcher,
) -> None:
    either = trg.EncoderTurn(16, None)
    assert [matcher.matches(either, cc(16, v)) for v in (1, 64, 65, 0)] == [
        True,
        False,
        True,
        False,
    ]
    anyhow = trg.VelocityRange(60, None)
    assert all(
        matcher.matches(anyhow, MidiEvent(EventKind.NOTE_ON, 0, 0, note=60, velocity=v))
        for v in (1, 60, 127)
    )
