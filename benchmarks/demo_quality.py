"""Free-running quality of a demo run against eSpeak NG's own rendering of unseen sentences.

    python benchmarks/demo_quality.py --checkpoint runs/demo [--sentences default|oov|ru] [--json OUT.json]

The measure, the pass rule and the sentence sets are described in taco_jax/demo/quality.py. Exit status 0 when
the run passes, 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import sys

from taco_jax.demo.quality import (  # noqa: F401  (names earlier scripts import from here)
    DEFAULT_SENTENCES,
    OOV_SENTENCES,
    RU_SENTENCES,
    SENTENCE_SETS,
    SENTENCES,
    dtw_mse,
    evaluate,
    oov_share,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="runs/demo", help="run directory or checkpoint")
    parser.add_argument(
        "--sentences",
        choices=sorted(SENTENCE_SETS),
        help="sentence set (default: ru for a Russian demo run, else default)",
    )
    parser.add_argument("--json", help="also write the full result here")
    args = parser.parse_args(argv)
    out = evaluate(args.checkpoint, sentence_set=args.sentences)
    for r in out["sentences"]:
        oov = f" oov {r['oov_word_share']:.2f}" if "oov_word_share" in r else ""
        print(
            f"{'stop' if r['stopped'] else 'NO STOP':7s} len {r['frames']:4d}/{r['espeak_frames']:4d} "
            f"({r['length_ratio']:.2f}) dtw_mse {r['dtw_mse']:.3f}{oov}  {r['text']}"
        )
    s = out["summary"]
    print(
        f"[{s['sentences']}] stopped {s['stopped']}/10, "
        f"lengths within +-{s['tolerance']:.0%}: {s['length_within_tolerance']}/10, "
        f"DTW MSE model {s['mean_dtw_mse_model_vs_espeak']:.3f} vs other-sentence baseline "
        f"{s['mean_dtw_mse_espeak_vs_other_sentence']:.3f} (ratio {s['error_ratio']:.2f}) -> "
        f"{'PASS' if s['pass'] else 'FAIL'}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
