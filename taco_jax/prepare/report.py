"""The preparation report: `report.json` (everything, machine-readable), `report.md` (the same for people) and
the duration histogram `durations.png`."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import statistics
from collections import Counter
from typing import Any

from taco_jax.config import Config
from taco_jax.data.mel_cache import MelCache
from taco_jax.data.pipeline import assign_bucket, sorted_buckets
from taco_jax.files import write_text_atomic
from taco_jax.prepare.frontend import FrontEnd
from taco_jax.prepare.items import DROP_REASONS, PROCESSED, REUSED, Outcome, Utterance
from taco_jax.prepare.options import PrepareOptions, PrepareResult
from taco_jax.prepare.plot import plot_durations
from taco_jax.prepare.readers import ReadResult

REPORT_JSON, REPORT_MD, DURATIONS_PNG = "report.json", "report.md", "durations.png"
_MD_SPEAKERS = 50  # speakers listed in report.md (all of them are in report.json)


def write_report(
    results: list[Outcome],
    prepared: PrepareResult,
    read: ReadResult,
    front: FrontEnd,
    cfg: Config,
    opts: PrepareOptions,
    speakers: dict[str, int],
    config_source: tuple[str | None, list[str]],
) -> dict[str, Any]:
    """Build the report of a preparation, write report.json, report.md and durations.png into the output
    folder (atomically), and return the report. `config_source`: the config file and `--set` overrides."""
    config_path, overrides = config_source
    out = prepared.out_dir
    kept = [*prepared.train, *prepared.val]
    source_seconds = sum(r.source_seconds or 0.0 for _, r, _ in results)
    report: dict[str, Any] = {
        "format": opts.fmt,
        "input": os.path.abspath(opts.input),
        "output": out,
        "metadata_files": [os.path.abspath(p) for p in read.metadata_files],
        "config": {**_config_section(cfg, config_path), "overrides": overrides},
        "options": {k: v for k, v in dataclasses.asdict(opts).items() if k not in ("fmt", "input", "out", "progress")},
        "counts": _counts(results, prepared, read),
        "hours": {
            "total": round(source_seconds / 3600, 4),
            "kept": round(sum(u.seconds for u in kept) / 3600, 4),
            "train": round(sum(u.seconds for u in prepared.train) / 3600, 4),
            "val": round(sum(u.seconds for u in prepared.val) / 3600, 4),
        },
        "durations": _duration_stats([u.seconds for u in kept]),
        "speakers": _speakers(prepared, speakers),
        "symbol_coverage": front.coverage(u.text for u in kept),
        "buckets": _buckets(kept, cfg),
        "warnings": [w for _, r, _ in results for w in r.warnings],
        "dropped": [d.to_dict() for d in prepared.drops],
        "train_command": _train_command(out, config_source, len(speakers)),
    }
    write_text_atomic(os.path.join(out, REPORT_JSON), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(os.path.join(out, REPORT_MD), render_markdown(report))
    dropped_seconds = [r.source_seconds for _, r, _ in results if r.drops and not r.outputs and r.source_seconds]
    plot_durations(os.path.join(out, DURATIONS_PNG), [u.seconds for u in kept], dropped_seconds,  # type: ignore[arg-type]
                   opts.min_seconds, opts.max_seconds)  # fmt: skip
    return report


def _config_section(cfg: Config, config_path: str | None) -> dict[str, Any]:
    return {
        "path": os.path.abspath(config_path) if config_path else None,
        "audio": dataclasses.asdict(cfg.audio),
        "mel_cache": MelCache(cfg.data.cache_dir or None, cfg.audio).dir,
        "text": dataclasses.asdict(cfg.text),
    }


def _counts(results: list[Outcome], prepared: PrepareResult, read: ReadResult) -> dict:
    reasons = Counter(d.reason for d in prepared.drops)
    return {
        "lines": read.n_lines,
        "items": len(results),
        "kept_items": sum(1 for _, r, _ in results if r.outputs),
        "utterances": len(prepared.train) + len(prepared.val),
        "segmented_items": sum(1 for _, r, _ in results if len(r.outputs) > 1),
        "train": len(prepared.train),
        "val": len(prepared.val),
        "reused": sum(1 for _, _, status in results if status == REUSED),
        "processed": sum(1 for _, _, status in results if status == PROCESSED),
        "clipped": sum(1 for _, r, _ in results if r.warnings),
        "dropped": {reason: reasons[reason] for reason in DROP_REASONS if reasons[reason]},
    }


def _duration_stats(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    return {
        "min": round(min(seconds), 3),
        "median": round(statistics.median(seconds), 3),
        "mean": round(statistics.fmean(seconds), 3),
        "max": round(max(seconds), 3),
    }


def _speakers(prepared: PrepareResult, ids: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per speaker (in id order): id, utterances, seconds, and the split."""
    out = {name: {"id": i, "utterances": 0, "seconds": 0.0, "train": 0, "val": 0} for name, i in ids.items()}
    for split, utts in (("train", prepared.train), ("val", prepared.val)):
        for u in utts:
            s = out[u.speaker]
            s["utterances"] += 1
            s["seconds"] += u.seconds
            s[split] += 1
    for s in out.values():
        s["seconds"] = round(s["seconds"], 3)
    return out


def _buckets(kept: list[Utterance], cfg: Config) -> dict[str, Any]:
    """How the kept utterances fit the config's `data.buckets`: the trainer drops those that fit none."""
    shapes = sorted_buckets(cfg)
    r = cfg.model.n_frames_per_step
    misfits = [u for u in kept if assign_bucket(u.n_symbols + int(cfg.text.add_eos), u.frames, shapes, r) is None]
    longest = max((t for _, t in shapes), default=0)
    return {
        "shapes": [list(s) for s in shapes],
        "largest_seconds": round(longest * cfg.audio.hop_length / cfg.audio.sampling_rate, 3),
        "fit_none": len(misfits),
        "fit_none_seconds": round(sum(u.seconds for u in misfits), 3),
    }


def _train_command(out: str, config_source: tuple[str | None, list[str]], n_speakers: int) -> str:
    """The command that trains on the prepared corpus with the same config and overrides (shell-quoted)."""
    config_path, overrides = config_source
    args = ["python", "-m", "taco_jax.train", "--config", config_path or "CONFIG.yaml"]
    sets = [*overrides, "data.corpus=filelists"]
    sets += [
        f"data.train_filelist={os.path.join(out, 'train.txt')}",
        f"data.val_filelist={os.path.join(out, 'val.txt')}",
    ]
    if n_speakers > 1:
        sets.append(f"model.n_speakers={n_speakers}")
    for item in sets:
        args += ["--set", item]
    return shlex.join(args)


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the report for people (every dropped item included)."""
    c, h = report["counts"], report["hours"]
    lines = [
        "# Corpus preparation report",
        "",
        f"- format: `{report['format']}`, input: `{report['input']}`",
        f"- metadata: {_md_files(report['metadata_files'])}",
        f"- config: `{report['config']['path'] or 'schema defaults'}`; mel cache: `{report['config']['mel_cache']}`",
        "",
        "| | items | hours |",
        "|---|---:|---:|",
        f"| read | {c['items']} ({c['lines']} lines) | {h['total']:.3f} |",
        f"| kept | {c['kept_items']} items, {c['utterances']} utterances | {h['kept']:.3f} |",
        f"| train | {c['train']} | {h['train']:.3f} |",
        f"| val | {c['val']} | {h['val']:.3f} |",
        "",
        f"Reused from the last run: {c['reused']}; processed now: {c['processed']}; "
        f"segmented recordings: {c['segmented_items']}; clipped: {c['clipped']}.",
        "",
        "![duration histogram](durations.png)",
        "",
        *_md_dropped_counts(c["dropped"]),
        *_md_speakers(report["speakers"]),
        *_md_coverage(report["symbol_coverage"]),
        *_md_buckets(report["buckets"]),
        *_md_list("Warnings", report["warnings"]),
        *_md_list("Dropped items", [f"`{d['source']}`: **{d['reason']}**: {d['detail']}" for d in report["dropped"]]),
        "## Training",
        "",
        "Use the same config and `--set` options (audio settings, `data.cache_dir`), so the trainer finds these mels:",
        "",
        f"    {report['train_command']}",
        "",
    ]
    return "\n".join(lines)


def _md_files(paths: list[str], shown: int = 5) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(f"`{p}`" for p in paths[:shown]) + more


def _md_dropped_counts(dropped: dict[str, int]) -> list[str]:
    if not dropped:
        return ["Nothing was dropped.", ""]
    return ["## Dropped, by reason", "", *(f"- {reason}: {n}" for reason, n in dropped.items()), ""]


def _md_speakers(speakers: dict[str, dict[str, Any]]) -> list[str]:
    if len(speakers) <= 1:
        return []
    rows = sorted(speakers.items(), key=lambda kv: -kv[1]["seconds"])[:_MD_SPEAKERS]
    more = f" (the {_MD_SPEAKERS} with the most audio; all in report.json)" if len(speakers) > _MD_SPEAKERS else ""
    lines = [f"## Speakers: {len(speakers)}{more}", "", "| speaker | id | utterances | minutes | train | val |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for name, s in rows:
        lines.append(
            f"| {_cell(name)} | {s['id']} | {s['utterances']} | {s['seconds'] / 60:.2f} | {s['train']} | {s['val']} |"
        )
    return [*lines, ""]


def _md_coverage(cov: dict[str, Any]) -> list[str]:
    lines = [
        "## Symbol coverage",
        "",
        f"Front end: table `{cov['symbols']}`, cleaners `{', '.join(cov['cleaners'])}`. "
        f"{cov['encoded_symbols']} symbols encoded, {cov['dropped_characters']} characters dropped "
        f"(kept fraction {cov['kept_fraction']:.4f}) in {cov['texts_with_dropped_characters']} of {cov['texts']} "
        "texts.",
        "",
    ]
    if cov["dropped"]:
        lines += ["| character | code point | count |", "|---|---|---:|"]
        lines += [f"| {_cell(repr(ch))} | U+{ord(ch[0]):04X} | {n} |" for ch, n in cov["dropped"].items()]
        lines.append("")
    return lines


def _md_buckets(b: dict[str, Any]) -> list[str]:
    if not b["fit_none"]:
        return []
    return [
        "## Buckets",
        "",
        f"{b['fit_none']} kept utterances ({b['fit_none_seconds']:.1f} s) fit none of the config's `data.buckets` "
        f"{b['shapes']} (the largest holds {b['largest_seconds']:.2f} s): the trainer drops them. Add a larger "
        "bucket or lower `--max-seconds`.",
        "",
    ]


def _md_list(title: str, entries: list[str]) -> list[str]:
    if not entries:
        return []
    return [f"## {title}: {len(entries)}", "", *(f"- {e}" for e in entries), ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
