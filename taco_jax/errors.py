"""Errors a user can cause, and how the command-line tools report every error: one line on stderr.

`UserError` marks the project's errors about input (config keys, data files, checkpoints, texts, run
directories); each message names the file and line, key or path. The CLIs print such an error as one line
`error: ...` and exit with status 2, as they do for an `OSError` about a file (missing, unreadable,
unwritable). Anything else is a bug: one line naming the exception, status 1; `python -m taco_jax.train` has
written its full traceback to the run's train.log by then (`add_traceback_note` says where).
"""

from __future__ import annotations

import sys

__all__ = ["UserError", "add_traceback_note", "report_error", "traceback_path"]

USER_ERROR_STATUS = 2
INTERNAL_ERROR_STATUS = 1
INTERRUPTED_STATUS = 130
_NOTE = "full traceback: "


class UserError(Exception):
    """Base of the errors caused by input or settings: the message alone tells the user what to fix."""

    exit_status = USER_ERROR_STATUS


def add_traceback_note(exc: BaseException, path: object) -> None:
    """Records on `exc` where its traceback was written (shown by `report_error`)."""
    exc.add_note(f"{_NOTE}{path}")


def traceback_path(exc: BaseException) -> str | None:
    """Where `exc`'s traceback was written (`add_traceback_note`), or None."""
    notes = [n for n in getattr(exc, "__notes__", []) if n.startswith(_NOTE)]
    return notes[-1][len(_NOTE) :] if notes else None


def report_error(exc: BaseException, *, stage: str = "") -> int:
    """Prints `exc` as one line on stderr and returns the command's exit status (SystemExit passes through).

    `stage`, if given, says what was going on ("training", "synthesis") for errors that are not the user's.
    """
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    where = traceback_path(exc)
    if isinstance(exc, UserError | OSError):
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return getattr(exc, "exit_status", USER_ERROR_STATUS)
    during = f" during {stage}" if stage else ""
    hint = f" ({_NOTE}{where})" if where else ""
    print(f"error{during}: {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
    return INTERNAL_ERROR_STATUS


def _one_line(exc: BaseException) -> str:
    """The message on one line (an OSError without its own text: its strerror and file name)."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:  # "[Errno 2] ...: 'f'" -> "f: ..."
        also = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        text = f"{exc.filename}{also}: {exc.strerror}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
