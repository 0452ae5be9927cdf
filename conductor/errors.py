"""One error hierarchy for the whole library, and the exit codes the CLIs end with.

Every expected failure is a `ConductorError`: it describes itself to a person in one line
(`diagnostics()`) and names its exit code, so the CLIs never format exceptions themselves, and
callers and tests match on types and on the data an error carries, never on its text. An error
reported at a place (a config key, a command-line option, a plugin) keeps the place as `where`
and the error it reports as `cause`, instead of re-stringifying it.

    ConductorError                  exit 1 unless said otherwise
    ├── UsageError                  exit 2: the command line is wrong
    ├── ConfigError                 a config file is invalid (where: file and key path)
    ├── InvalidValueError           a value (from a flag, a config, a plugin) is not what it names
    │   ├── CapabilityError         not a capability
    │   ├── PatternError            not a host pattern `scheme://host[:port]`
    │   ├── LimitError              not a limit, or not a positive integer
    │   ├── PolicyError             not a signature policy
    │   └── EventSpecError          not an event spec (`note:60:100`, `cc:7:64`)
    ├── FileError                   a file is missing, unreadable or unwritable
    │   ├── SmfError                not a Standard MIDI File we can play
    │   └── UnsafeCacheError        the module cache cannot be trusted, so it is not used
    ├── KeyFileError                a key file or key value is malformed, or the passphrase wrong
    ├── TrustStoreError             the trust store is corrupt, or an add/remove cannot be done
    ├── GrantsError                 the grants file is corrupt
    ├── SignatureError              a signature is malformed, missing, or does not match
    │   └── UntrustedKeyError       exit 3: valid, but the key is not trusted
    ├── PluginError                 a plugin cannot be loaded, initialised or executed
    │   ├── PluginNameError         a file name that cannot be a plugin's name
    │   ├── MetadataError           a plugin's metadata is not what SPEC §4 describes
    │   └── PluginsNotLoaded        several plugins of a config did not load (exit: their rule)
    ├── ClosedError                 an object used after `close()` (also a ValueError)
    ├── PortError                   a MIDI port cannot be found, is ambiguous, or cannot be opened
    ├── DesktopError                a desktop operation failed (`failure`: a DesktopFailure)
    └── SetupError                  an official plugin's set-up did not complete

Exceptions that never leave their module (a host function's `HostCallError`, the runtime's
`_CallError`, a desktop tool's `ToolFailed`, a replay's `EndOfInput`) are control flow, not
part of this tree. Nor is `Interrupted` (SIGINT or SIGTERM stopped the command): like
KeyboardInterrupt it is a BaseException, so no handler of failures takes it for one.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from enum import Enum, IntEnum
from typing import Self


class ExitCode(IntEnum):
    """How both CLIs end (SPEC §1); the only place these numbers are decided."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    UNTRUSTED_KEY = 3  # a valid signature by a key the trust store does not hold
    INTERRUPTED = 130  # SIGINT (Ctrl-C) stopped the command
    TERMINATED = 143  # SIGTERM stopped the command

    @classmethod
    def for_signal(cls, signum: int) -> ExitCode:
        """How a command that SIGINT or SIGTERM stopped ends: 128 + the signal's number, as a
        shell reports a process the signal itself ended."""
        return cls(128 + signum)


def overall_exit_code(codes: Iterable[int]) -> int:
    """One exit code for several outcomes (plugins verified, loaded or checked together):
    UNTRUSTED_KEY only when every refusal is an untrusted key, so a script can tell "trust this
    key" from "something is broken"."""
    refusals = {code for code in codes if code != ExitCode.OK}
    if not refusals:
        return ExitCode.OK
    if refusals == {ExitCode.UNTRUSTED_KEY}:
        return ExitCode.UNTRUSTED_KEY
    return ExitCode.FAILURE


class ConductorError(Exception):
    """Base of every expected failure; `diagnostics()` is the one line a person sees.

    `where` says where the problem is (a file and key path, an option, a plugin); `cause` is the
    error this one reports at that place, kept whole (it is also the `__cause__`)."""

    exit_code: int = ExitCode.FAILURE

    def __init__(
        self, message: str, *, where: str = "", cause: ConductorError | None = None
    ) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    @classmethod
    def at(cls, where: str, cause: ConductorError) -> Self:
        """`cause` reported at `where` as this kind of error (a config key, an option)."""
        return cls(cause.diagnostics(), where=where, cause=cause)

    def diagnostics(self) -> str:
        return str(self)


class UsageError(ConductorError):
    """The command line itself is wrong in a way the argument parser cannot see."""

    exit_code = ExitCode.USAGE


class ConfigError(ConductorError):
    """A config file is invalid; the message names the file, line and key path."""


class InvalidValueError(ConductorError):
    """A value is not what it should name. Raised by the library's parsers whatever the value's
    origin; the caller that knows the origin reports it (`ConfigError.at`, `UsageError.at`)."""


class CapabilityError(InvalidValueError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown capability {name!r} (known: {', '.join(known)})")
        self.name = name


class PatternError(InvalidValueError):
    """A host pattern that is not `scheme://host[:port]`."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"host pattern {pattern[:100]!r}: {reason}")
        self.pattern = pattern
        self.reason = reason


class LimitError(InvalidValueError):
    """`key` of the limits at `where` is unknown, or `value` is not a positive integer."""

    def __init__(self, where: str, key: str, value: object, reason: str) -> None:
        super().__init__(reason, where=f"{where}.{key}")
        self.key = key
        self.value = value


class PolicyError(InvalidValueError):
    def __init__(self, where: str, value: str, choices: Sequence[str]) -> None:
        super().__init__(f"{value!r} is not one of {', '.join(choices)}", where=where)
        self.value = value


class EventSpecError(InvalidValueError):
    """An event spec for a manual call that is not `note:…` or `cc:…`."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"{spec!r}: {reason}")
        self.spec = spec
        self.reason = reason


class FileError(ConductorError):
    """A file we read or write is missing, unreadable or unwritable."""


class SmfError(FileError):
    """The bytes are not a Standard MIDI File we can play."""


class UnsafeCacheError(FileError):
    """The cache directory or its key cannot be trusted, so the cache is not used."""


class KeyFileError(ConductorError):
    """A key file or key value is malformed, or its passphrase is wrong."""


class TrustStoreError(ConductorError):
    """The trust store is corrupt, or an add/remove cannot be done."""


class GrantsError(ConductorError):
    """The grants file is corrupt or an operation on it is impossible."""


class SignatureError(ConductorError):
    """A signature file is malformed, missing, or does not match the plugin."""


class UntrustedKeyError(SignatureError):
    """The signature is valid, but its key is not trusted under the active policy."""

    exit_code = ExitCode.UNTRUSTED_KEY


class PluginError(ConductorError):
    """A plugin could not be loaded, initialised or executed."""


class PluginNameError(PluginError):
    """A file name that cannot be a plugin's name."""


class MetadataError(PluginError):
    """The metadata JSON is not what SPEC §4 describes."""


class PluginsNotLoaded(PluginError):
    """Plugins of a config that did not load, with the exit code of them all: UNTRUSTED_KEY
    only when each of them was refused for an untrusted key."""

    def __init__(self, message: str, failures: Sequence[ConductorError]) -> None:
        super().__init__(message)
        self.failures = tuple(failures)
        self.exit_code = overall_exit_code(failure.exit_code for failure in self.failures)


class ClosedError(ConductorError, ValueError):
    """A plugin host, plugin or MIDI input was used after `close()`. Also a ValueError, as
    wasmtime-py and mido raise for their closed objects."""


class PortError(ConductorError):
    """A MIDI port cannot be found, is ambiguous, or cannot be opened."""


class DesktopFailure(Enum):
    """What kind of failure a desktop operation had, for callers that map it to their own codes
    (the `system` host function to UNSUPPORTED, TIMEOUT, IO, INVALID)."""

    UNSUPPORTED = "unsupported"  # no tool for this here (the message names those tried)
    TIMEOUT = "timeout"  # the operation's time budget ran out
    IO = "io"  # tools ran and failed (the message says what each said)
    INVALID = "invalid"  # the request itself is wrong (unknown key, bad percent, refused name)


class DesktopError(ConductorError):
    """A desktop operation failed; the message is one line naming the operation."""

    def __init__(self, failure: DesktopFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


class SetupError(ConductorError):
    """An official plugin's set-up (an authorization) did not complete."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped the command, inside a plugin's call (`where` names the plugin,
    `what` the call) or elsewhere. Same one-line `diagnostics()` and `exit_code` as a
    ConductorError, but a BaseException: raised wherever the signal finds the main thread, it
    must pass every `except Exception` on its way out."""

    def __init__(self, signum: int, *, where: str = "", what: str = "") -> None:
        name = signal.Signals(signum).name
        text = f"{what} interrupted by {name}" if what else f"interrupted by {name}"
        super().__init__(f"{where}: {text}" if where else text)
        self.signum = signum
        self.where = where
        self.exit_code = ExitCode.for_signal(signum)

    def diagnostics(self) -> str:
        return str(self)
