"""The records that flow through corpus preparation, the reasons an item is dropped, and output naming."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

FORMATS = ("ljspeech", "ruslan", "css10", "mailabs", "commonvoice", "generic")  # the corpus layouts read

# Reasons an item (or one segment of it) is dropped: the `reason` field of `Drop`, keys of the report's counts.
MALFORMED_LINE = "malformed_line"  # the metadata line cannot be parsed
MISSING_AUDIO = "missing_audio"  # the audio file named by the line does not exist
EMPTY_TEXT = "empty_text"  # no text, or nothing left after the configured cleaners and symbol table
UNDECODABLE = "undecodable"  # corrupt, truncated or in a format no installed decoder reads
SILENT = "silent"  # RMS below the silence threshold, or nothing left after trimming silence
TOO_SHORT = "too_short"  # shorter than --min-seconds after trimming
TOO_LONG = "too_long"  # longer than --max-seconds after trimming (and not segmented)
TOO_FAST = "too_fast"  # more characters per second than --max-cps
TOO_SLOW = "too_slow"  # fewer characters per second than --min-cps

DROP_REASONS = (MALFORMED_LINE, MISSING_AUDIO, EMPTY_TEXT, UNDECODABLE, SILENT, TOO_SHORT, TOO_LONG, TOO_FAST, TOO_SLOW)

_UNSAFE_NAME_RE = re.compile(r"[^\w.-]+")
_WHITESPACE_RE = re.compile(r"\s+")
_MAX_NAME = 80  # characters of a file or folder name we create (file systems allow 255 bytes)


@dataclass(frozen=True)
class SourceItem:
    """One utterance as a corpus's metadata describes it.

    audio: absolute path of the source recording. text: the transcript (whitespace collapsed, no '|').
    speaker: speaker name ("" until the reader's default is applied). source: `file:line` of the metadata
    line. item_id: the name the output wav gets (made unique per speaker by `assign_output_names`).
    """

    audio: str
    text: str
    speaker: str
    source: str
    item_id: str


@dataclass(frozen=True)
class Drop:
    """An item, metadata line or segment that is not in the filelists, and why."""

    source: str  # `file:line` (with " segment k/n" for a piece of a segmented recording)
    reason: str  # one of DROP_REASONS
    detail: str  # human-readable, with the measured value and the threshold
    audio: str = ""  # the recording, when known

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason, "detail": self.detail, "audio": self.audio}


@dataclass(frozen=True)
class OutputWav:
    """A kept utterance written by preparation.

    wav: path relative to the output folder, '/'-separated (as the filelists hold it). text: its transcript.
    seconds: its duration. size / mtime_ns: the written file's identity, to notice later edits.
    """

    wav: str
    text: str
    seconds: float
    size: int = 0
    mtime_ns: int = 0


@dataclass
class ItemResult:
    """What processing one `SourceItem` produced.

    source_seconds: the decoded recording's duration before trimming (None when it could not be decoded).
    outputs: the kept utterances (one, several for a segmented recording, or none). drops: why the item or
    some of its segments were dropped. warnings: problems that did not drop it (clipping).
    """

    source_seconds: float | None = None
    outputs: list[OutputWav] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """Whitespace collapsed to single spaces and '|' (the filelist separator) replaced by a space."""
    return _WHITESPACE_RE.sub(" ", text.replace("|", " ")).strip()


def safe_name(name: str, fallback: str = "item") -> str:
    """A file-name-safe version of `name`: letters, digits, '_', '.', '-'; no leading dot; at most 80
    characters (a longer name is cut and given a hash of the whole, so distinct names stay distinct)."""
    safe = _UNSAFE_NAME_RE.sub("_", name).lstrip(".") or fallback
    if len(safe) > _MAX_NAME:
        safe = safe[: _MAX_NAME - 9] + "-" + _short_hash(name)
    return safe


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def speaker_dirs(speakers: list[str]) -> dict[str, str]:
    """Speaker name -> folder name under `wavs/`, distinct even where names differ only in unsafe characters
    or in case (case-insensitive file systems)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in speakers:
        folder = safe_name(name, "speaker")
        if folder.casefold() in taken:
            folder = f"{folder[: _MAX_NAME - 9]}-{_short_hash(name)}"
        taken.add(folder.casefold())
        out[name] = folder
    return out


def assign_output_names(items: list[SourceItem]) -> list[SourceItem]:
    """Items with file-safe ids that are unique per speaker (case-insensitively); a repeated id gets a hash of
    its source line, so the first occurrence keeps the corpus's own id."""
    taken: set[tuple[str, str]] = set()
    out = []
    for item in items:
        item_id = safe_name(item.item_id)
        if (item.speaker, item_id.casefold()) in taken:
            item_id = f"{item_id[: _MAX_NAME - 9]}-{_short_hash(item.source + item.audio)}"
        taken.add((item.speaker, item_id.casefold()))
        out.append(SourceItem(item.audio, item.text, item.speaker, item.source, item_id))
    return out


# How an item's result came about this run (the third field of an `Outcome`).
REUSED = "reused"  # from the manifest of an earlier run
PROCESSED = "processed"  # decoded and processed now
SCREENED = "screened"  # dropped before decoding (no text, no audio file)


@dataclass
class Utterance:
    """A kept utterance, as the filelists list it.

    wav: path relative to the output folder ('/'-separated). text: transcript. speaker: speaker name.
    seconds: duration. source: `file:line` it came from. frames: its mel frames and n_symbols: its encoded
    text length (EOS not counted), both filled in when the outputs are written.
    """

    wav: str
    text: str
    speaker: str
    seconds: float
    source: str
    frames: int = 0
    n_symbols: int = 0


Outcome = tuple[SourceItem, ItemResult, str]  # (item, its result, REUSED | PROCESSED | SCREENED)
