"""Running a command within a time budget, with every process it starts ending with it.

Low-level and neutral: the desktop backend, the `exec` host function and the engine's Shell
action all run their commands through `run_bounded`; approvals name programs by
`resolve_command`.
"""

from conductor.processes.bounded import (
    OUTPUT_CAP,
    SUPERVISED,
    Completed,
    minimal_environment,
    run_bounded,
)
from conductor.processes.commands import resolve_command

__all__ = [
    "OUTPUT_CAP",
    "SUPERVISED",
    "Completed",
    "minimal_environment",
    "resolve_command",
    "run_bounded",
]
