"""The manifest (`<out>/manifest.json`): what each item produced last time, so a rerun skips unchanged items.

An entry is reused when the source recording has the size and modification time it had, the text and the
processing settings are the same, and every wav it wrote is still there with the size and modification time
it was written with. Results of items that were dropped after decoding (silent, too long, ...) are reused
too, so a rerun decodes nothing that has not changed.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from taco_jax.files import write_text_atomic
from taco_jax.prepare.items import Drop, ItemResult, OutputWav, SourceItem

logger = logging.getLogger("taco_jax.prepare")

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
WAV_DIR = "wavs"  # every wav we write, and so every file we may delete, is under <out>/wavs

SourceStat = tuple[int, int]  # (size in bytes, mtime in ns)


def source_stat(path: str) -> SourceStat | None:
    """(size, mtime_ns) of `path`; None when it does not exist or cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Manifest:
    """Entries by output stem (`wavs/<speaker>/<id>`), loaded from and saved to `<out_dir>/manifest.json`."""

    def __init__(self, out_dir: str, entries: dict[str, dict[str, Any]] | None = None):
        self.out_dir = out_dir
        self.entries: dict[str, dict[str, Any]] = entries or {}
        self._replaced: set[str] = set()  # wavs (relative paths) of replaced entries, deleted by `prune`

    @classmethod
    def load(cls, out_dir: str) -> Manifest:
        """The manifest in `out_dir`; an empty one when there is none, or (with a warning) when it is unreadable."""
        path = os.path.join(out_dir, MANIFEST_NAME)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return cls(out_dir)
        except (OSError, ValueError) as e:
            logger.warning("%s: unreadable (%s); every item is processed again", path, e)
            return cls(out_dir)
        if (
            not isinstance(data, dict)
            or data.get("version") != MANIFEST_VERSION
            or not isinstance(data.get("items"), dict)
        ):
            logger.warning("%s: not a manifest of this version; every item is processed again", path)
            return cls(out_dir)
        return cls(out_dir, data["items"])

    def lookup(self, key: str, item: SourceItem, stat: SourceStat | None, settings: str) -> ItemResult | None:
        """The stored result of `item` (output stem `key`, source identity `stat`, settings fingerprint
        `settings`) when it is still valid (see the module docstring), else None."""
        entry = self.entries.get(key)
        if entry is None or stat is None:
            return None
        same = (entry.get("audio"), entry.get("text"), entry.get("size"), entry.get("mtime_ns"), entry.get("settings"))
        if same != (item.audio, item.text, stat[0], stat[1], settings):
            return None
        try:
            outputs = [OutputWav(**o) for o in entry["outputs"]]
            drops = [Drop(**d) for d in entry["drops"]]
            result = ItemResult(entry["source_seconds"], outputs, drops, list(entry["warnings"]))
        except (KeyError, TypeError):
            return None
        for out in outputs:
            if source_stat(os.path.join(self.out_dir, *out.wav.split("/"))) != (out.size, out.mtime_ns):
                return None
        return result

    def record(self, key: str, item: SourceItem, stat: SourceStat, settings: str, result: ItemResult) -> None:
        """Store `result` for `item` (whose source had identity `stat` before it was processed)."""
        old = self.entries.get(key)
        new_wavs = {o.wav for o in result.outputs}
        if old is not None:
            self._replaced.update(o["wav"] for o in old.get("outputs", []) if o.get("wav") not in new_wavs)
        self.entries[key] = {
            "audio": item.audio,
            "text": item.text,
            "size": stat[0],
            "mtime_ns": stat[1],
            "settings": settings,
            "source_seconds": result.source_seconds,
            "outputs": [vars(o) for o in result.outputs],
            "drops": [d.to_dict() for d in result.drops],
            "warnings": result.warnings,
        }

    def prune(self, keep: set[str]) -> int:
        """Forget entries whose key is not in `keep` and delete the wavs that no entry produces any more (only
        files under `<out>/wavs`); returns the number of files deleted."""
        for key in [k for k in self.entries if k not in keep]:
            self._replaced.update(o.get("wav", "") for o in self.entries.pop(key).get("outputs", []))
        current = {o["wav"] for e in self.entries.values() for o in e.get("outputs", [])}
        deleted = 0
        for rel in sorted(self._replaced - current):
            parts = rel.split("/")
            if len(parts) < 2 or parts[0] != WAV_DIR or ".." in parts:
                continue  # not a path this tool wrote: never delete it
            try:
                os.unlink(os.path.join(self.out_dir, *parts))
                deleted += 1
            except FileNotFoundError:
                pass
        self._replaced.clear()
        return deleted

    def save(self) -> None:
        """Write the manifest atomically."""
        blob = json.dumps({"version": MANIFEST_VERSION, "items": self.entries}, ensure_ascii=False)
        write_text_atomic(os.path.join(self.out_dir, MANIFEST_NAME), blob + "\n")
