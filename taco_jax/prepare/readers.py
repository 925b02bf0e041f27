"""Corpus readers: each format's metadata -> `SourceItem`s (audio path, text, speaker, `file:line`).

A line that cannot be parsed is dropped and listed (`Drop` with reason malformed_line) as long as some line of
the corpus is usable; when every line is malformed the corpus is not what the format expects, and reading
stops with a DataError naming the first bad `file:line`. Metadata files are read as UTF-8 (a byte-order mark
and CRLF endings are fine); a line that is not UTF-8 is a malformed line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from taco_jax.data.filelist import DataError
from taco_jax.prepare.items import FORMATS, MALFORMED_LINE, Drop, SourceItem, normalize_text

MIX_SPEAKER = "mix"  # M-AILABS books read by several people ("mix" folders) have no single speaker

# A line's parser: (fields split at the separator, `file:line`) -> the item, or why the line is malformed.
_Parse = Callable[[list[str], str], SourceItem | str]


@dataclass
class ReadResult:
    """Everything a reader found: usable items (in metadata order), malformed lines, and the files read."""

    items: list[SourceItem] = field(default_factory=list)
    malformed: list[Drop] = field(default_factory=list)
    metadata_files: list[str] = field(default_factory=list)
    n_lines: int = 0  # non-blank, non-comment metadata lines (header rows excluded)

    def extend(self, other: ReadResult) -> None:
        self.items += other.items
        self.malformed += other.malformed
        self.metadata_files += other.metadata_files
        self.n_lines += other.n_lines


def read_corpus(fmt: str, input_path: str) -> ReadResult:
    """Read the corpus at `input_path` (a folder; for `generic`, the filelist) in format `fmt` (see FORMATS).

    Raises DataError when the input or a required metadata file is missing, when no line is usable (naming
    the first malformed `file:line`), or when the corpus has no lines at all.
    """
    readers = {
        "ljspeech": _read_ljspeech,
        "ruslan": _read_ruslan,
        "css10": _read_css10,
        "mailabs": _read_mailabs,
        "commonvoice": _read_commonvoice,
        "generic": _read_generic,
    }
    if fmt not in readers:
        raise DataError(f"unknown corpus format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "generic":
        if not os.path.isfile(input_path):
            what = "is a directory, not a filelist" if os.path.isdir(input_path) else "filelist not found"
            raise DataError(f"{input_path}: {what}")
    elif not os.path.isdir(input_path):
        what = "is a file, not a corpus directory" if os.path.exists(input_path) else "input directory not found"
        raise DataError(f"{input_path}: {what}")
    result = readers[fmt](input_path)
    where = ", ".join(result.metadata_files)
    if not result.items:
        if result.malformed:
            first = result.malformed[0]
            raise DataError(
                f"{first.source}: {first.detail} (all {len(result.malformed)} lines of {where} are malformed; "
                f"is this a {fmt} corpus?)"
            )
        raise DataError(f"{where}: no utterances found")
    return result


def _lines(path: str, skip_comments: bool = False) -> Iterator[tuple[str, str | None]]:
    """(`file:line`, the line without its ending, or None when it is not UTF-8) for every non-blank line."""
    with open(path, "rb") as f:
        raw = f.read()
    for lineno, raw_line in enumerate(raw.splitlines(), start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            yield f"{path}:{lineno}", None
            continue
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip() or (skip_comments and line.lstrip().startswith("#")):
            continue
        yield f"{path}:{lineno}", line


def _read_table(
    path: str, parse: _Parse, sep: str = "|", skip_first: bool = False, comments: bool = False
) -> ReadResult:
    """Parse every line of a metadata file with `parse`; malformed lines become drops."""
    result = ReadResult(metadata_files=[path])
    for i, (source, line) in enumerate(_lines(path, comments)):
        if skip_first and i == 0:
            continue
        result.n_lines += 1
        parsed = "line is not valid UTF-8" if line is None else parse(line.split(sep), source)
        if isinstance(parsed, str):
            result.malformed.append(Drop(source, MALFORMED_LINE, parsed))
        else:
            result.items.append(parsed)
    return result


def _require(path: str, fmt: str, what: str) -> str:
    if not os.path.isfile(path):
        raise DataError(f"{path}: {fmt} metadata file not found ({what})")
    return path


def _id_text(fields: list[str], n_fields: tuple[int, ...], layout: str) -> tuple[str, str] | str:
    """(id, text) of an `id|text[|normalized text]` line: the normalized column when it is not empty."""
    if len(fields) not in n_fields:
        return f"expected {layout}, found {len(fields)} '|'-separated field{'s' if len(fields) > 1 else ''}"
    item_id = fields[0].strip()
    if not item_id:
        return f"empty id (expected {layout})"
    text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
    return item_id, normalize_text(text)


def _read_id_text_table(
    meta: str, n_fields: tuple[int, ...], layout: str, item: Callable[[str, str, str], SourceItem]
) -> ReadResult:
    """`_read_table` over `layout` lines whose first field is an id and whose last text is the transcript:
    `item(id, text, source)` makes each line's SourceItem."""

    def parse(fields: list[str], source: str) -> SourceItem | str:
        parsed = _id_text(fields, n_fields, layout)
        return parsed if isinstance(parsed, str) else item(*parsed, source)

    return _read_table(meta, parse)


def _read_ljspeech(root: str) -> ReadResult:
    """LJSpeech: `metadata.csv` lines `id|text|normalized text`, audio in `wavs/<id>.wav`; one speaker."""
    meta = _require(os.path.join(root, "metadata.csv"), "ljspeech", "lines id|text|normalized text")

    def item(item_id: str, text: str, source: str) -> SourceItem:
        wav = os.path.abspath(os.path.join(root, "wavs", item_id + ".wav"))
        return SourceItem(wav, text, "ljspeech", source, item_id)

    return _read_id_text_table(meta, (2, 3), "id|text|normalized text", item)


def _ruslan_metadata(root: str) -> str:
    preferred = os.path.join(root, "metadata_RUSLAN_22200.csv")
    if os.path.isfile(preferred):
        return preferred
    found = sorted(str(p) for p in Path(root).glob("*.csv"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{preferred}: ruslan metadata file not found (nor any *.csv in {root}; lines id|text)")
    raise DataError(f"{root}: several *.csv files and no metadata_RUSLAN_22200.csv; which is the metadata? {found}")


def _read_ruslan(root: str) -> ReadResult:
    """RUSLAN: `metadata_RUSLAN_22200.csv` (or the one `*.csv`) lines `id|text`, audio in `RUSLAN/<id>.wav` or
    `wavs/<id>.wav`; one speaker."""
    meta = _ruslan_metadata(root)

    def item(item_id: str, text: str, source: str) -> SourceItem:
        candidates = [os.path.abspath(os.path.join(root, sub, item_id + ".wav")) for sub in ("RUSLAN", "wavs")]
        audio = next((c for c in candidates if os.path.isfile(c)), candidates[0])
        return SourceItem(audio, text, "ruslan", source, item_id)

    return _read_id_text_table(meta, (2,), "id|text", item)


def _read_css10(root: str) -> ReadResult:
    """CSS10: `transcript.txt` lines `relpath|original text|normalized text|duration`, paths relative to the
    corpus folder; one speaker."""
    meta = _require(os.path.join(root, "transcript.txt"), "css10", "lines relpath|text|normalized text|duration")

    def item(rel: str, text: str, source: str) -> SourceItem:
        stem = os.path.splitext(os.path.basename(rel))[0]
        return SourceItem(os.path.abspath(os.path.join(root, rel)), text, "css10", source, stem)

    return _read_id_text_table(meta, (3, 4), "relpath|text|normalized text|duration", item)


def _read_mailabs(root: str) -> ReadResult:
    """M-AILABS: `by_book/<gender>/<speaker>/<book>/metadata.csv` lines `id|text|normalized text`, audio in
    `<book>/wavs/<id>.wav`; the speaker is the speaker folder (`mix` for `by_book/mix/<book>`)."""
    metas = sorted(p for p in Path(root).rglob("metadata.csv") if (p.parent / "wavs").is_dir())
    if not metas:
        raise DataError(
            f"{root}: mailabs metadata file not found (expected by_book/<gender>/<speaker>/<book>/metadata.csv "
            "next to a wavs folder)"
        )
    result = ReadResult()
    for meta in metas:
        book = meta.parent
        speaker = MIX_SPEAKER if book.parent.name == MIX_SPEAKER else book.parent.name

        def item(item_id: str, text: str, source: str, book: Path = book, speaker: str = speaker) -> SourceItem:
            return SourceItem(str((book / "wavs" / f"{item_id}.wav").absolute()), text, speaker, source, item_id)

        result.extend(_read_id_text_table(str(meta), (2, 3), "id|text|normalized text", item))
    return result


def _read_commonvoice(root: str) -> ReadResult:
    """Common Voice: `validated.tsv` (or `train.tsv`), tab-separated with a header naming at least `client_id`,
    `path` and `sentence`; audio in `clips/<path>`; the speaker is the client_id."""
    tsv = next((p for p in (os.path.join(root, n) for n in ("validated.tsv", "train.tsv")) if os.path.isfile(p)), None)
    if tsv is None:
        raise DataError(f"{os.path.join(root, 'validated.tsv')}: commonvoice metadata file not found (nor train.tsv)")
    header = next((line for _, line in _lines(tsv)), None) or ""
    columns = [c.strip() for c in header.split("\t")]
    missing = [c for c in ("client_id", "path", "sentence") if c not in columns]
    if missing:
        raise DataError(f"{tsv}:1: the header has no column {', '.join(missing)} (found: {columns})")
    col = {name: columns.index(name) for name in ("client_id", "path", "sentence")}

    def parse(fields: list[str], source: str) -> SourceItem | str:
        if len(fields) <= max(col.values()):
            return f"expected {len(columns)} tab-separated fields as in the header, found {len(fields)}"
        rel, client = fields[col["path"]].strip(), fields[col["client_id"]].strip()
        if not rel or not client:
            return "empty path or client_id"
        stem = os.path.splitext(os.path.basename(rel))[0]
        text = normalize_text(fields[col["sentence"]])
        return SourceItem(os.path.abspath(os.path.join(root, "clips", rel)), text, client, source, stem)

    return _read_table(tsv, parse, sep="\t", skip_first=True)


def _read_generic(filelist: str) -> ReadResult:
    """A filelist `path|text[|speaker]` (paths relative to the filelist; any speaker name; '#' comments)."""
    base = os.path.dirname(os.path.abspath(filelist))

    def parse(fields: list[str], source: str) -> SourceItem | str:
        if len(fields) not in (2, 3):
            return f"expected path|text[|speaker], found {len(fields)} '|'-separated field{'s' * (len(fields) > 1)}"
        rel = fields[0].strip()
        if not rel:
            return "empty audio path"
        speaker = fields[2].strip() if len(fields) == 3 else ""
        if len(fields) == 3 and not speaker:
            return "empty speaker (a trailing '|'?)"
        audio = os.path.normpath(os.path.join(base, os.path.expanduser(rel)))
        stem = os.path.splitext(os.path.basename(rel))[0]
        return SourceItem(audio, normalize_text(fields[1]), speaker or "generic", source, stem)

    return _read_table(filelist, parse, comments=True)
