"""What a checkpoint records about its text front end, beyond the symbol table and the config's cleaner names.

A cleaner name is not the whole front end: `russian_stress:PATH` reads a file that may be edited later, and
`espeak_ipa:VOICE` depends on the eSpeak NG data that happens to be installed. The record pins both (the
dictionary's fingerprint, the library version), so synthesis can say when it runs a model with another front
end than the one it was trained with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["front_end_changes", "front_end_record"]


def front_end_record(cleaners: Sequence[str]) -> dict[str, Any]:
    """{"cleaners": [...], "files": {cleaner spec: sha256[:16] of the file it reads}, "espeak_ng": version or None}.

    Raises the stress dictionary's own error when a dictionary cannot be read (it was validated when the
    cleaner was built, so this only fails if the file vanished since).
    """
    files: dict[str, str] = {}
    espeak = None
    for spec in cleaners:
        name, _, argument = spec.partition(":")
        if name == "russian_stress":
            from taco_jax.text.stress import stress_dictionary_fingerprint

            files[spec] = stress_dictionary_fingerprint(argument)
        elif name == "espeak_ipa":
            from taco_jax.espeak_ng import library_version

            espeak = library_version()
    return {"cleaners": list(cleaners), "files": files, "espeak_ng": espeak}


def front_end_changes(recorded: Mapping[str, Any] | None, cleaners: Sequence[str]) -> list[str]:
    """How the front end of `cleaners` today differs from `recorded` (a `front_end_record`), one line each.

    Empty when they agree, or when `recorded` is None (checkpoints written before the record existed).
    A dictionary that cannot be read any more is reported as a change, not raised: synthesis can still run.
    """
    if not recorded:
        return []
    changes = []
    if list(recorded.get("cleaners", [])) != list(cleaners):
        changes.append(f"cleaners {list(cleaners)} differ from the trained {list(recorded.get('cleaners', []))}")
    for spec, fingerprint in dict(recorded.get("files", {})).items():
        if spec not in cleaners:
            continue
        try:
            now = front_end_record([spec])["files"][spec]
        except (OSError, ValueError) as e:
            changes.append(f"{spec}: cannot read it ({e}); the model was trained with fingerprint {fingerprint}")
            continue
        if now != fingerprint:
            changes.append(f"{spec}: the file changed since training (fingerprint {now}, trained with {fingerprint})")
    trained_espeak = recorded.get("espeak_ng")
    if trained_espeak and any(s.startswith("espeak_ipa:") for s in cleaners):
        now = front_end_record([s for s in cleaners if s.startswith("espeak_ipa:")])["espeak_ng"]
        if now != trained_espeak:
            changes.append(f"eSpeak NG {now} phonemises, the model was trained with {trained_espeak}")
    return changes
