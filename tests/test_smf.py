"""Standard MIDI Files for replay: the compact parser plays what mido plays, refuses what it cannot
play with one line, never hangs or overflows on hostile bytes, and holds 12 bytes per message."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor._files import MIDI_FILE_LIMIT
from conductor.errors import ClosedError, FileError, SmfError
from conductor.midi.events import EventKind
from conductor.midi.inputs import EndOfInput, ReplayInput, open_input
from conductor.midi.smf import parse_song, read_song

# Example counts come from the suite's Hypothesis profile (tests/conftest.py; `make fuzz`).
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])

channel = st.integers(0, 15)
seven = st.integers(0, 127)
delta = st.one_of(st.just(0), st.integers(0, 50), st.integers(0, 0x0FFFFFFF))
message = st.one_of(
    st.builds(
        lambda c, n, v, t: mido.Message("note_on", channel=c, note=n, velocity=v, time=t),
        channel,
        seven,
        seven,
        delta,
    ),
    st.builds(
        lambda c, n, v, t: mido.Message("note_off", channel=c, note=n, velocity=v, time=t),
        channel,
        seven,
        seven,
        delta,
    ),
    st.builds(
        lambda c, n, v, t: mido.Message("control_change", channel=c, control=n, value=v, time=t),
        channel,
        seven,
        seven,
        delta,
    ),
    st.builds(
        lambda c, p, t: mido.Message("pitchwheel", channel=c, pitch=p, time=t),
        channel,
        st.integers(-8192, 8191),
        delta,
    ),
    st.builds(
        lambda c, v, t: mido.Message("aftertouch", channel=c, value=v, time=t),
        channel,
        seven,
        delta,
    ),
    st.builds(
        lambda c, n, v, t: mido.Message("polytouch", channel=c, note=n, value=v, time=t),
        channel,
        seven,
        seven,
        delta,
    ),
    st.builds(
        lambda c, p, t: mido.Message("program_change", channel=c, program=p, time=t),
        channel,
        seven,
        delta,
    ),
    st.builds(
        lambda tempo, t: mido.MetaMessage("set_tempo", tempo=tempo, time=t),
        st.integers(1, 0xFFFFFF),
        delta,
    ),
    st.builds(
        lambda data, t: mido.Message("sysex", data=data, time=t),
        st.lists(seven, max_size=20),
        delta,
    ),
    st.builds(
        lambda name, t: mido.MetaMessage("track_name", name=name, time=t),
        st.text(alphabet="abc xyz", max_size=10),
        delta,
    ),
)


def midi_bytes(tracks: list[list[mido.Message]], ticks_per_beat: int, file_type: int) -> bytes:
    midi = mido.MidiFile(type=file_type, ticks_per_beat=ticks_per_beat)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def mido_timeline(data: bytes) -> list[tuple[float, tuple[int, ...]]]:
    seconds, timeline = 0.0, []
    for played in mido.MidiFile(file=io.BytesIO(data)):
        seconds += played.time
        if not played.is_meta and played.type != "sysex":
            timeline.append((seconds, tuple(played.bytes())))
    return timeline


def our_timeline(data: bytes) -> list[tuple[float, tuple[int, ...]]]:
    timeline = []
    for seconds, packed in parse_song(data, "test.mid").timeline():
        status = packed & 0xFF
        size = 2 if status & 0xF0 in (0xC0, 0xD0) else 3
        timeline.append((seconds, (status, packed >> 8 & 0xFF, packed >> 16)[:size]))
    return timeline


@SETTINGS
@given(
    tracks=st.lists(st.lists(message, max_size=30), min_size=1, max_size=3),
    ticks_per_beat=st.integers(1, 0x7FFF),
)
def test_plays_what_mido_plays(tracks: list[list[mido.Message]], ticks_per_beat: int) -> None:
    data = midi_bytes(tracks, ticks_per_beat, 1)
    ours, theirs = our_timeline(data), mido_timeline(data)
    assert [bytes_ for _, bytes_ in ours] == [bytes_ for _, bytes_ in theirs]
    for (mine, _), (reference, _) in zip(ours, theirs, strict=True):
        assert mine == pytest.approx(reference, rel=1e-9, abs=1e-9)


@SETTINGS
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda tail: b"MThd\0\0\0\x06\0\x01\0\x02\x01\xe0" + tail),
        st.tuples(st.lists(message, max_size=20), st.integers(0, 400), st.binary(max_size=8)).map(
            lambda t: _mutated(midi_bytes([t[0]], 480, 0), t[1], t[2])
        ),
    )
)
def test_any_bytes_give_a_song_or_one_line(data: bytes) -> None:
    try:
        song = parse_song(data, "hostile.mid")
    except SmfError as exc:
        assert str(exc).startswith("hostile.mid: ") and "\n" not in str(exc)
        return
    for _seconds, packed in song.timeline():
        assert packed & 0xFF < 0xF0


def _mutated(data: bytes, at: int, patch: bytes) -> bytes:
    at = at % (len(data) + 1)
    return data[:at] + patch + data[at + len(patch) :]


def test_holds_twelve_bytes_per_message(tmp_path: Path) -> None:
    count = 100_000
    track = mido.MidiTrack()
    for index in range(count // 2):
        track.append(mido.Message("note_on", note=36 + index % 8, velocity=100, time=1))
        track.append(mido.Message("note_off", note=36 + index % 8, velocity=0, time=1))
    midi = mido.MidiFile()
    midi.tracks.append(track)
    midi.save(tmp_path / "long.mid")
    song = read_song(tmp_path / "long.mid")
    assert song.entries == count
    assert song.nbytes == 12 * count  # against ~900 bytes for each mido message object


def test_format_2_tracks_play_one_after_another() -> None:
    first = [mido.Message("note_on", note=1, time=480), mido.Message("note_on", note=2, time=480)]
    second = [mido.Message("note_on", note=3, time=480)]
    song = parse_song(midi_bytes([first, second], 480, 2), "patterns.mid")
    assert [(seconds, packed >> 8 & 0xFF) for seconds, packed in song.timeline()] == [
        (0.5, 1),
        (1.0, 2),
        (1.5, 3),
    ]


def test_smpte_timing_ignores_tempo() -> None:
    data = bytearray(midi_bytes([[mido.Message("note_on", note=1, time=80)]], 480, 0))
    data[12:14] = (-25 & 0xFF, 40)  # 25 frames per second, 40 ticks per frame: 1,000 ticks/s
    assert [seconds for seconds, _ in parse_song(bytes(data), "smpte.mid").timeline()] == [0.08]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"RIFF....", "no MThd header"),
        (b"MThd\0\0\0\x06\0\x03\0\x01\x01\xe0", "unknown MIDI file format 3"),
        (b"MThd\0\0\0\x06\0\x00\0\x01\0\0", "invalid time division 0"),
        (b"MThd\0\0\0\x06\0\x00\0\x02\x01\xe0MTrk\0\0\0\0", "declares 2 track(s) but ends"),
        (b"MThd\0\0\0\x06\0\x00\0\x01\x01\xe0MTrk\0\0\0\x09\0\x90", "runs past the end"),
        (b"MThd\0\0\0\x06\0\x00\0\x01\x01\xe0MTrk\0\0\0\x02\0\x40", "running status unset"),
        (b"MThd\0\0\0\x06\0\x00\0\x01\x01\xe0MTrk\0\0\0\x04\0\x90\x80\x10", "data byte over"),
        (b"MThd\0\0\0\x06\0\x00\0\x01\x01\xe0MTrk\0\0\0\x02\0\xf8", "not allowed"),
        (b"MThd\0\0\0\x06\0\x00\0\x01\x01\xe0MTrk\0\0\0\x06\xff\xff\xff\xff\x7f\x90", "four"),
    ],
)
def test_refuses_what_it_cannot_play_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SmfError, match=re.escape(reason)):
        parse_song(data, "bad.mid")


def test_special_and_oversized_files_are_refused_without_reading_them(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    with pytest.raises(FileError, match="is a FIFO, not a regular file"):
        read_song(fifo)
    with pytest.raises(FileError, match="not a regular file"):
        read_song(Path("/dev/zero"))
    huge = tmp_path / "huge.mid"
    with huge.open("wb") as handle:
        handle.truncate(MIDI_FILE_LIMIT + 1)  # sparse: costs no disk
    with pytest.raises(FileError, match="larger than its"):
        read_song(huge)


def test_a_replay_at_full_speed_gives_every_event_then_ends(tmp_path: Path) -> None:
    track = mido.MidiTrack(
        [mido.Message("note_on", note=n % 128, velocity=1 + n % 127, time=10) for n in range(500)]
        + [mido.Message("program_change", program=3, channel=9, time=0)]
        + [mido.Message("sysex", data=[1, 2, 3], time=0)]  # no trigger looks at it
    )
    midi = mido.MidiFile()
    midi.tracks.append(track)
    midi.save(tmp_path / "song.mid")
    replay = ReplayInput(tmp_path / "song.mid", 0)
    assert replay.lossless and replay.name == "replay:song.mid"
    notes = []
    with pytest.raises(EndOfInput):
        for _ in range(1000):
            event = replay.receive(0.02)
            if event is not None:
                notes.append((event.note, event.velocity))
                last = event
    assert notes == [(n % 128, 1 + n % 127) for n in range(500)] + [(None, None)]
    assert (last.kind, last.channel, last.value) == (EventKind.PROGRAM_CHANGE, 9, 3)


def test_the_replay_input_is_owned_explicitly(tmp_path: Path) -> None:
    """`open_input` of a file is a replay; whoever opens it closes it, once or twice, and a
    closed input refuses to be read (mido's ports behave the same)."""
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=9, time=0)]))
    midi.save(tmp_path / "one.mid")
    with open_input(tmp_path / "one.mid", speed=0) as replay:
        assert isinstance(replay, ReplayInput) and not replay.closed
        assert (replay.dropped, replay.sources()) == (0, {"replay:one.mid": "replay:one.mid"})
        event = replay.receive(0.02)
        assert event is not None and event.note == 60
    assert replay.closed
    replay.close()
    with pytest.raises(ClosedError):
        replay.receive(0.02)
