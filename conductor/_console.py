"""What both CLIs share: one-line errors with exit codes, `--json` output and rich consoles."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from conductor.errors import ConductorError

P = ParamSpec("P")
R = TypeVar("R")

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


_CTX = "_conductor_ctx"


def _debug_enabled(ctx: typer.Context | None) -> bool:
    root = ctx.find_root() if ctx else None
    return bool(root and isinstance(root.obj, dict) and root.obj.get("debug"))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr (one line) and return the Exit to raise."""
    stderr.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Map library errors to one stderr line and their exit code; tracebacks only with --debug."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs.pop(_CTX, None)
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except ConductorError as exc:
            if _debug_enabled(ctx):  # type: ignore[arg-type]
                traceback.print_exc()
            raise fail(exc.diagnostics(), exc.exit_code) from None
        except Exception as exc:
            if _debug_enabled(ctx):  # type: ignore[arg-type]
                traceback.print_exc()
            raise fail(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)"
            ) from None

    # Typer passes the context to a parameter annotated `typer.Context`; adding one to the
    # wrapper's signature gives every command the root's --debug flag without global state.
    signature = inspect.signature(command, eval_str=True)
    context = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), context]
    )
    return wrapper


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def version_callback(name: str, version: str) -> Callable[[bool], None]:
    def show(value: bool) -> None:
        if value:
            typer.echo(f"{name} {version}")
            raise typer.Exit()

    return show


def run_and_exit(app: typer.Typer) -> NoReturn:
    """Run a CLI app, flush what it printed, and end the process at once with its exit code.

    Ending with `os._exit` skips interpreter teardown: wasmtime's native worker threads can
    still be running then, and tearing the runtime down under them aborts the process now and
    then ("panic in a function that cannot unwind", exit 134) after the command itself succeeded.
    """
    code: int = 0
    try:
        app()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)
