"""Filelists: one utterance per line, `path|text[|speaker]`, UTF-8.

Blank lines and lines whose first non-blank character is '#' are skipped. Relative wav paths are resolved
against the directory of the filelist (not the working directory), so a corpus folder can be moved as a
whole. Every error names `file:line`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from taco_jax.errors import UserError


class DataError(UserError, ValueError):
    """Invalid training data; the message starts with the offending `file:line` (or the file)."""


@dataclass(frozen=True)
class Utterance:
    """One filelist line.

    wav_path: absolute path of the audio file.
    text: the raw transcript (cleaned later by the text frontend).
    speaker: integer speaker id (0 when the filelist has no speaker column).
    source: `file:line` of the line, for error messages and reports.
    """

    wav_path: str
    text: str
    speaker: int
    source: str


def filelist_lines(path: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """(`file:line`, line) for each line of a UTF-8 filelist that is neither blank nor a '#' comment, in order.

    A UTF-8 byte-order mark on line 1 is dropped and CRLF endings are fine; the line keeps its other spaces.

    Raises:
      DataError: naming the file when it is missing, unreadable or UTF-16 text (at line 1), and `file:line` for a
        line that is not UTF-8.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: filelist not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read filelist: {e.strerror or e}") from None

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # "Unicode" in Windows editors: every line would fail below
        raise DataError(f"{path}:1: the filelist is UTF-16 text; save it as UTF-8")
    # Decode line by line so an encoding error can name its line.
    for lineno, raw_line in enumerate(raw.splitlines(), start=1):
        source = f"{path}:{lineno}"
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{source}: line is not valid UTF-8 ({e.reason} at byte {e.start}); save the filelist as UTF-8"
            ) from None
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # BOM written by some editors
        if line.strip() and not line.lstrip().startswith("#"):
            yield source, line


def listed_path(filelist: str | os.PathLike[str], entry: str) -> str:
    """The normalised absolute path of `entry` (`~` expanded), a path written in `filelist`: a relative one is
    taken from the filelist's directory, not the working directory."""
    base = os.path.dirname(os.path.abspath(filelist))
    return os.path.normpath(os.path.join(base, os.path.expanduser(entry)))


def read_filelist(path: str | os.PathLike[str]) -> list[Utterance]:
    """Parse a filelist into utterances (in file order).

    Raises DataError naming `file:line` for a line without '|', too many '|' fields, an empty path, a
    speaker that is not a non-negative integer or a line that is not UTF-8 (a UTF-16 file fails at line 1),
    and naming the file when it is missing or unreadable. A UTF-8 byte-order mark and CRLF endings are fine.
    """
    out: list[Utterance] = []
    for source, line in filelist_lines(path):
        fields = line.split("|")
        if len(fields) == 1:
            raise DataError(f"{source}: line has no '|' separator: {_clip(line)!r}")
        if len(fields) > 3:
            raise DataError(f"{source}: expected path|text[|speaker], found {len(fields)} '|'-separated fields")
        wav = fields[0].strip()
        if not wav:
            raise DataError(f"{source}: empty wav path: {_clip(line)!r}")
        speaker = 0
        if len(fields) == 3:
            spk = fields[2].strip()
            try:
                speaker = int(spk)
            except ValueError:
                hint = " (a doubled '|'?)" if not fields[1].strip() else ""
                raise DataError(f"{source}: speaker must be an integer, got {spk!r}{hint}") from None
            if speaker < 0:
                raise DataError(f"{source}: speaker must be >= 0, got {speaker}")
        out.append(Utterance(wav_path=listed_path(path, wav), text=fields[1].strip(), speaker=speaker, source=source))
    return out


def _clip(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."
