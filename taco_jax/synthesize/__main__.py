"""Command line of taco_jax.synthesize.

    python -m taco_jax.synthesize --checkpoint RUN_OR_CKPT (--text "..." | --text-file F) --out-dir D
        [--reference-wav W | --style-token K] [--style-scale S]     (models with GST)
        [--speaker K]                                               (multi-speaker models)

writes per input line NNN.wav (Griffin-Lim), NNN.png (alignment), NNN.npy (log-mel [frames, n_mels]) and
report.json (a list, in input order, of {text, frames, seconds, stopped, wav, mel}), and prints one line per
sentence. A line with nothing to speak (empty, or every character dropped) is an error (exit status 2)
reported before anything is synthesized or written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from taco_jax.errors import report_error
from taco_jax.logging_setup import setup_logging
from taco_jax.synthesize import TextInputError, load_synthesizer, write_outputs

DESCRIPTION = "Text -> mel -> wav: the synthesis API and CLI."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m taco_jax.synthesize", description=DESCRIPTION)
    parser.add_argument("--checkpoint", required=True, help="run directory, checkpoints directory or step directory")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", action="append", help="a sentence to synthesize (repeatable)")
    group.add_argument("--text-file", help="a UTF-8 file with one sentence per line")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--reference-wav", help="GST models: speak in the style of this recording")
    style.add_argument("--style-token", type=int, help="GST models: speak in the style of this token alone")
    parser.add_argument("--style-scale", type=float, default=1.0, help="GST models: style strength")
    parser.add_argument("--speaker", type=int, help="multi-speaker models: the speaker id")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        return _synthesize(args)
    except BaseException as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage="synthesis")


def _read_text_file(path: str) -> tuple[list[str], list[str]]:
    """(texts, labels) of the non-empty lines of a UTF-8 file (a byte-order mark and CRLF endings are fine)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            numbered = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    except UnicodeDecodeError as e:
        raise TextInputError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if not numbered:
        raise TextInputError(f"{path}: no non-empty lines")
    return [text for _, text in numbered], [f"line {n}" for n, _ in numbered]  # the file's own line numbers


def _synthesize(args: argparse.Namespace) -> int:
    if args.text_file:
        texts, labels = _read_text_file(args.text_file)
    else:
        texts = args.text
        labels = [f"--text {i + 1}" for i in range(len(texts))]
    synth = load_synthesizer(
        args.checkpoint, args.set, args.seed, args.reference_wav, args.style_token, args.style_scale, args.speaker
    )
    # Every text is validated before any is synthesized, so a bad one leaves no output files.
    results = synth(texts, batch_size=args.batch_size, labels=labels)
    report = write_outputs(synth, results, args.out_dir)
    for item in report:
        status = "stopped" if item["stopped"] else "hit max_decoder_steps"
        print(f"{item['wav']}: {item['seconds']:.2f} s, {status}: {item['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
