"""What both CLIs share: one-line errors with exit codes, `--json` output and rich consoles.

This is the output layer. Each command invocation owns one `Redactor` (fed with the secrets of
the configs it loads) and installs it into every output for its duration: both consoles, JSON
documents, error lines and log records. The consoles also show control characters as escapes,
so outside text can never drive the terminal whatever a call site forgot.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from conductor import _logging
from conductor._redact import Redactor
from conductor._text import visible, visible_json
from conductor.errors import ConductorError, Interrupted

P = ParamSpec("P")
R = TypeVar("R")


class RedactingConsole(Console):
    """A rich console whose every string (table cells and titles included) is redacted and has
    its control characters made visible, after markup is parsed and before it is laid out.
    Emoji shortcodes stay text: a plugin called `:warning:` is shown by that name."""

    def __init__(self, redactor: Redactor | None = None, **options: Any) -> None:
        super().__init__(**{"emoji": False, **options})
        self.redactor = redactor or Redactor()

    def render_str(self, text: str, **options: Any) -> Text:
        rendered = super().render_str(text, **options)
        clean = visible(self.redactor(rendered.plain), multiline=True)
        if clean == rendered.plain:
            return rendered
        return Text(
            clean,
            style=rendered.style,
            justify=rendered.justify,
            overflow=rendered.overflow,
            no_wrap=rendered.no_wrap,
            end=rendered.end,
        )


stdout = RedactingConsole(highlight=False, soft_wrap=True)
stderr = RedactingConsole(stderr=True, highlight=False, soft_wrap=True)


def shown(text: str) -> str:
    """Outside text (a plugin's metadata, logs, output or errors; a signer's name) ready for
    console markup: on one line, control characters as escapes, brackets escaped."""
    return escape(visible(text))


@contextlib.contextmanager
def _redacting(redactor: Redactor) -> Iterator[None]:
    """Install `redactor` into every output (consoles, JSON, error lines, log) for a block."""
    previous = stdout.redactor, stderr.redactor
    stdout.redactor = stderr.redactor = redactor
    _logging.use_redactor(redactor)
    try:
        yield
    finally:
        stdout.redactor, stderr.redactor = previous
        _logging.use_redactor(previous[1])


_CTX = "_conductor_ctx"


def _debug_enabled(ctx: typer.Context | None) -> bool:
    root = ctx.find_root() if ctx else None
    return bool(root and isinstance(root.obj, dict) and root.obj.get("debug"))


def error_line(message: str) -> None:
    """Print `error: message` on stderr, on one line."""
    stderr.print(f"error: {visible(message)}", markup=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr (one line) and return the Exit to raise."""
    error_line(message)
    return typer.Exit(code)


def _print_traceback() -> None:
    stderr.print(traceback.format_exc().rstrip(), markup=False)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Map library errors to one stderr line and their exit code; tracebacks only with --debug.

    The invocation's `Redactor` is made here and installed into every output while the command
    runs; a command that loads secrets asks for it with a parameter annotated `Redactor`, which
    Typer never sees.
    """
    signature = inspect.signature(command, eval_str=True)
    wanted = [name for name, p in signature.parameters.items() if p.annotation is Redactor]

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs.pop(_CTX, None)
        redactor = Redactor()
        for name in wanted:
            kwargs[name] = redactor
        with _redacting(redactor):
            try:
                return command(*args, **kwargs)
            except (typer.Exit, typer.Abort, KeyboardInterrupt):
                raise
            except (ConductorError, Interrupted) as exc:
                if _debug_enabled(ctx):  # type: ignore[arg-type]
                    _print_traceback()
                raise fail(exc.diagnostics(), exc.exit_code) from None
            except Exception as exc:
                if _debug_enabled(ctx):  # type: ignore[arg-type]
                    _print_traceback()
                raise fail(
                    f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)"
                ) from None

    # Typer passes the context to a parameter annotated `typer.Context`; adding one to the
    # wrapper's signature gives every command the root's --debug flag without global state.
    context = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    visible_parameters = [p for name, p in signature.parameters.items() if name not in wanted]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*visible_parameters, context]
    )
    return wrapper


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout, with every secret redacted."""
    text = json.dumps(stdout.redactor.document(document), indent=2, ensure_ascii=False)
    sys.stdout.write(visible_json(stdout.redactor(text)) + "\n")
    sys.stdout.flush()


class RedactingStream(io.TextIOBase):
    """A text stream that redacts what is written through it (for reporters writing lines)."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self._stream = stream
        self._redactor = redactor

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._stream.write(self._redactor(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()
