"""Standard MIDI Files read into compact arrays, for replay.

A file is parsed once, track by track, into two flat arrays per track (absolute ticks and packed
messages: 12 bytes per message), so a replay's memory follows the number of messages, not the
~900 bytes a mido message object costs. Only what a replay plays is kept: channel messages and
tempo changes; other meta events and sysex are skipped (their delta times still count).
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from conductor._files import MIDI_FILE_LIMIT, read_bytes
from conductor.errors import SmfError

DEFAULT_TEMPO = 500_000  # µs per quarter note: 120 bpm
TEMPO = 0xFF  # the low byte of a packed tempo change (µs per beat in the upper 24 bits)
_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}


@dataclass(frozen=True)
class Track:
    ticks: array[int]  # absolute tick of each entry, ascending
    events: array[int]  # status | data1 << 8 | data2 << 16, or TEMPO | µs per beat << 8

    def entries(self) -> Iterator[tuple[int, int]]:
        return zip(self.ticks, self.events, strict=True)


@dataclass(frozen=True)
class Song:
    format: int
    division: int  # ticks per beat, or negative for SMPTE timing (as in the header)
    tracks: tuple[Track, ...]

    @property
    def entries(self) -> int:
        return sum(len(track.events) for track in self.tracks)

    @property
    def nbytes(self) -> int:
        """Bytes held by the parsed song (its arrays)."""
        return sum(
            len(t.ticks) * t.ticks.itemsize + len(t.events) * t.events.itemsize for t in self.tracks
        )

    def timeline(self) -> Iterator[tuple[float, int]]:
        """(seconds from the start, packed channel message), in playing order.

        Tracks of a format 0/1 file play together (ties in track order, tempo changes from any
        track apply to all, as mido plays them); those of a format 2 file play one after another.
        """
        if self.format == 2:
            offset = 0.0
            for track in self.tracks:
                last = 0.0
                for last, packed in self._timed(track.entries()):
                    yield offset + last, packed
                offset += last
            return
        merged = heapq.merge(
            *(track.entries() for track in self.tracks), key=lambda entry: entry[0]
        )
        yield from self._timed(merged)

    def _timed(self, entries: Iterable[tuple[int, int]]) -> Iterator[tuple[float, int]]:
        if self.division < 0:
            frames = _SMPTE_FPS.get(-(self.division >> 8), 30.0)
            per_tick = 1.0 / (frames * (self.division & 0xFF or 1))
            fixed = True
        else:
            per_tick = DEFAULT_TEMPO / 1e6 / self.division
            fixed = False
        seconds, last_tick = 0.0, 0
        for tick, packed in entries:
            seconds += (tick - last_tick) * per_tick
            last_tick = tick
            if packed & 0xFF == TEMPO:
                if not fixed:
                    per_tick = (packed >> 8) / 1e6 / self.division
                continue
            yield seconds, packed


def read_song(path: Path) -> Song:
    """Read and parse `path`; SmfError (or FileError) with one line naming the file otherwise."""
    return parse_song(read_bytes(path, "MIDI file", MIDI_FILE_LIMIT), str(path))


def parse_song(data: bytes, source: str) -> Song:
    if data[:4] != b"MThd" or len(data) < 14:
        raise SmfError(f"{source}: not a Standard MIDI File (no MThd header)")
    header_size = int.from_bytes(data[4:8], "big")
    if header_size < 6 or 8 + header_size > len(data):
        raise SmfError(f"{source}: not a Standard MIDI File (header of {header_size} bytes)")
    file_format = int.from_bytes(data[8:10], "big")
    declared = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big", signed=True)
    if file_format not in (0, 1, 2):
        raise SmfError(f"{source}: unknown MIDI file format {file_format}")
    if division == 0 or (division < 0 and division & 0xFF == 0):
        raise SmfError(f"{source}: invalid time division {division}")
    tracks: list[Track] = []
    position = 8 + header_size
    while len(tracks) < declared:
        if position + 8 > len(data):
            raise SmfError(
                f"{source}: declares {declared} track(s) but ends after {len(tracks)} (truncated?)"
            )
        kind = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "big")
        start, end = position + 8, position + 8 + size
        if end > len(data):
            raise SmfError(f"{source}: chunk at byte {position} runs past the end of the file")
        if kind == b"MTrk":
            try:
                tracks.append(_parse_track(data, start, end))
            except _TrackError as exc:
                raise SmfError(
                    f"{source}: track {len(tracks)}: {exc.reason} at byte {exc.offset}"
                ) from None
        position = end  # chunks of other kinds are skipped, as the format asks readers to
    return Song(file_format, division, tuple(tracks))


class _TrackError(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


def _parse_track(data: bytes, start: int, end: int) -> Track:
    """One MTrk chunk's body, data[start:end]. Hot loop for large files: kept flat."""
    ticks: array[int] = array("Q")
    events: array[int] = array("I")
    add_tick, add_event = ticks.append, events.append
    position, tick, running = start, 0, 0
    while position < end:
        # Delta time: a variable-length quantity of at most four bytes.
        delta = 0
        for _ in range(4):
            if position >= end:
                raise _TrackError("delta time runs past the end of the track", position)
            byte = data[position]
            position += 1
            delta = (delta << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        else:
            raise _TrackError("delta time longer than four bytes", position)
        tick += delta
        if position >= end:
            raise _TrackError("event missing after its delta time", position)
        status = data[position]
        if status >= 0x80:
            position += 1
        elif running:
            status = running  # running status: this byte is the first data byte
        else:
            raise _TrackError("data byte without a status (running status unset)", position)
        if status < 0xF0:
            count = _DATA_BYTES[status & 0xF0]
            if position + count > end:
                raise _TrackError("message runs past the end of the track", position)
            first = data[position]
            second = data[position + 1] if count == 2 else 0
            if (first | second) & 0x80:
                raise _TrackError("data byte over 127", position)
            position += count
            running = status
            add_tick(tick)
            add_event(status | first << 8 | second << 16)
            continue
        if status == 0xFF:  # meta event: type, length, data; it leaves running status alone
            if position >= end:
                raise _TrackError("meta event runs past the end of the track", position)
            meta_type = data[position]
            length, position = _length(data, position + 1, end)
            if position + length > end:
                raise _TrackError("meta event runs past the end of the track", position)
            if meta_type == 0x51 and length == 3:
                add_tick(tick)
                add_event(TEMPO | int.from_bytes(data[position : position + 3], "big") << 8)
            position += length
            if meta_type == 0x2F:  # end of track: anything after it is not played
                break
            continue
        if status in (0xF0, 0xF7):  # sysex: length, data; cancels running status
            length, position = _length(data, position, end)
            if position + length > end:
                raise _TrackError("sysex runs past the end of the track", position)
            position += length
            running = 0
            continue
        raise _TrackError(f"status byte 0x{status:02x} is not allowed in a MIDI file", position)
    return Track(ticks, events)


def _length(data: bytes, position: int, end: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if position >= end:
            raise _TrackError("length runs past the end of the track", position)
        byte = data[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, position
    raise _TrackError("length longer than four bytes", position)
