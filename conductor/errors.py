"""One error hierarchy for the whole library.

Every error knows how to describe itself to a person in one line and which exit code the CLIs use
for it, so the CLIs never format exceptions themselves and tests assert on types, not strings.
"""

from __future__ import annotations


class ConductorError(Exception):
    """Base of every expected failure; `diagnostics()` is the one line a person sees."""

    exit_code = 1

    def diagnostics(self) -> str:
        return str(self)


class UsageError(ConductorError):
    """The command line itself is wrong in a way the argument parser cannot see."""

    exit_code = 2


class FileError(ConductorError):
    """A file we read or write is missing, unreadable or unwritable."""


class KeyFileError(ConductorError):
    """A key file or key value is malformed, or its passphrase is wrong."""


class SignatureError(ConductorError):
    """A signature file is malformed, or does not match the plugin."""


class UntrustedKeyError(ConductorError):
    """The signature is valid, but its key is not trusted under the active policy."""

    exit_code = 3


class TrustStoreError(ConductorError):
    """The trust store is corrupt, or an add/remove cannot be done."""


class ConfigError(ConductorError):
    """A config file is invalid; the message names the file, line and key path."""


class PluginError(ConductorError):
    """A plugin could not be loaded, initialised or executed."""
