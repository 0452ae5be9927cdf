"""MIDI in and out: events, and inputs (named port, virtual port, replayed file) behind one interface."""
