"""The ``flownb`` command's plumbing for pipes: ``-`` for stdin, and a quiet end on ``| head``.

Kept apart from :mod:`flownb.cli` (which builds the parser) because these are about the
process's standard streams, not about any command: every command printing a lot may meet a
reader that stops early, and both ``--inputs -`` and ``flownb validate -`` read stdin the same
capped way a blueprint file is read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from ..core.blueprint import Blueprint
from ..core.errors import FlownbError, FlownbWarning

#: what ``-`` names on the command line, as for ``cat -``
STDIN = "-"
#: exit status when stdout's reader went away (``flownb runs --json | head``): the shell's
#: 128 + SIGPIPE, what a C tool killed by the signal reports
EXIT_BROKEN_PIPE = 141


def read_stdin(what: str) -> str:
    """Standard input as text, at most the blueprint file cap (:mod:`flownb.core.limits`), so a
    runaway producer cannot fill memory; ``what`` names the option in the error."""
    from ..core.limits import ENV_MAX_FILE_BYTES, current_limits

    cap = current_limits().max_file_bytes
    if sys.stdin is None or sys.stdin.closed:
        raise FlownbError(f"{what} is '-' (standard input), but this process has no stdin")
    raw = sys.stdin.buffer.read(cap + 1)
    if len(raw) > cap:
        raise FlownbError(f"{what}: standard input is over {cap} bytes (raise {ENV_MAX_FILE_BYTES} "
                          "if that is meant)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlownbError(f"{what}: standard input is not UTF-8 text (byte {exc.start})") from None


def blueprint_from_stdin() -> Blueprint:
    """``flownb validate -``: a JSON or YAML blueprint piped in, reported as ``<stdin>``."""
    text = read_stdin("the blueprint")
    if text.lstrip().startswith(("{", "[")):
        return Blueprint.from_json(text, path="<stdin>", default_id="stdin")
    return Blueprint.from_yaml(text, path="<stdin>", default_id="stdin")


def quiet_broken_pipe() -> int:
    """stdout's reader is gone: point stdout at /dev/null so the interpreter's final flush
    cannot raise again (the recipe of Python's ``signal`` docs), and say nothing — the reader
    asked for no more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout already closed or not a real file: nothing to flush
        pass
    return EXIT_BROKEN_PIPE




def warning_printer(fallback: Callable[..., None]) -> Callable[..., None]:
    """flownb's warnings as ``flownb: warning: …`` (a person reads them, not a file:line);
    other warnings as before."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if issubclass(category, FlownbWarning):
            print(f"flownb: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


__all__ = ["EXIT_BROKEN_PIPE", "STDIN", "blueprint_from_stdin", "quiet_broken_pipe", "read_stdin",
           "warning_printer"]
