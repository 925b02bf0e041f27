"""python -m taco_jax.prepare --format F --input PATH --out DIR [--config CFG.yaml] [--set KEY=VALUE ...] [options]

Turns a downloaded corpus (ljspeech, ruslan, css10, mailabs, commonvoice, or a generic `path|text[|speaker]`
filelist) into checked 16-bit wavs, `train.txt` / `val.txt` filelists, cached mels, `mel_mean.npy` and a report.
Every error is one line on stderr: `error: ...`, exit status 2 for errors in the input or the options.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from taco_jax.errors import report_error
from taco_jax.logging_setup import setup_logging
from taco_jax.prepare.items import FORMATS

logger = logging.getLogger("taco_jax.prepare")

# The character demo config of a source checkout (its audio settings are the schema's defaults, as in every shipped
# config). Characters rather than the demo's phonemes: a corpus in another language then shows up in the coverage
# report as dropped characters instead of being read out as English phonemes.
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo_graphemes.yaml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_jax.prepare",
        description="Prepare a corpus for training: decode, check, trim, filter and (optionally) segment every "
        "recording, write 16-bit wavs and cached mels, and train/val filelists with a report.",
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="corpus layout")
    p.add_argument("--input", required=True, help="the corpus folder (for --format generic: the filelist)")
    p.add_argument("--out", required=True, help="output folder (wavs/, train.txt, val.txt, report.md, ...)")
    p.add_argument("--config", help=f"YAML config whose audio, text and data.cache_dir training will use "
                   f"(default: {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])})")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config override")
    p.add_argument("--val-fraction", type=float, default=0.05, help="validation share, per speaker (default 0.05)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="shortest utterance kept, after trimming")
    p.add_argument("--max-seconds", type=float, default=15.0, help="longest utterance kept, after trimming")
    p.add_argument("--min-cps", type=float, default=5.0, help="slowest speaking rate kept (characters/second)")
    p.add_argument("--max-cps", type=float, default=30.0, help="fastest speaking rate kept (characters/second)")
    segment = "cut recordings longer than --max-seconds at pauses near sentence ends (see the README)"
    p.add_argument("--segment", action="store_true", help=segment)
    trim = "leading/trailing audio this many dB below the loudest frame is trimmed (default 40)"
    p.add_argument("--trim-db", type=float, default=40.0, help=trim)
    silence = "recordings with an RMS below this (dBFS) are dropped as silent (default -60)"
    p.add_argument("--silence-db", type=float, default=-60.0, help=silence)
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU; 1: no pool)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    try:
        return _prepare(args)
    except BaseException as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage="preparation")


def _prepare(args: argparse.Namespace) -> int:
    from taco_jax.config import load_config
    from taco_jax.prepare.options import PrepareOptions
    from taco_jax.prepare.run import prepare_corpus

    config_path = args.config
    if config_path is None and DEFAULT_CONFIG.is_file():
        config_path = str(DEFAULT_CONFIG)
    elif config_path is None:
        logger.info("no --config and no %s: using the schema's default settings", DEFAULT_CONFIG)
    cfg = load_config(config_path, args.set)
    opts = PrepareOptions(
        fmt=args.format, input=args.input, out=args.out, val_fraction=args.val_fraction,
        min_seconds=args.min_seconds, max_seconds=args.max_seconds, min_cps=args.min_cps, max_cps=args.max_cps,
        segment=args.segment, workers=args.workers, progress=not args.no_progress, trim_db=args.trim_db,
        silence_db=args.silence_db,
    )  # fmt: skip
    result = prepare_corpus(opts, cfg, config_path, args.set)
    _print_summary(result.report)
    return 0


def _hours(h: float) -> str:
    return f"{h:.2f} h" if h >= 0.1 else f"{h * 60:.1f} min"


def _print_summary(report: dict) -> None:
    c, h = report["counts"], report["hours"]
    dropped = ", ".join(f"{k}={v}" for k, v in c["dropped"].items()) or "none"
    out = Path(report["output"])
    print(
        f"kept {c['kept_items']} of {c['items']} items ({_hours(h['kept'])} of {_hours(h['total'])}): "
        f"{c['train']} train, {c['val']} val utterances; dropped: {dropped}\n"
        f"wrote {out / 'train.txt'}, {out / 'val.txt'}; report: {out / 'report.md'}\n"
        f"train with: {report['train_command']}"
    )


if __name__ == "__main__":
    sys.exit(main())
