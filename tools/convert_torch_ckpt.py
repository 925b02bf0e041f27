"""Convert NVIDIA/tacotron2 or DeepLearningExamples PyTorch checkpoints to taco_jax checkpoints, and back.

    python tools/convert_torch_ckpt.py tacotron2_statedict.pt runs/nvidia_pretrained
    python tools/convert_torch_ckpt.py runs/nvidia_pretrained exported.pt --to-torch [--layout dle]

The taco_jax checkpoint (<OUT_DIR>/checkpoints/<step>/{state,meta} + config.yaml + conversion_report.json)
uses configs/nvidia_ljspeech.yaml with the model dims inferred from the tensors and the NVIDIA 148-symbol
table; `taco_jax.checkpoint.restore_model(OUT_DIR)` loads it (synthesis, warm start). When the file holds an
Adam state (NVIDIA's train.py checkpoints: 'optimizer') the checkpoint is a full train state at the file's
iteration, with the Adam moments converted: `python -m taco_jax.train --config OUT_DIR/config.yaml --set
run.out_dir=<parent of OUT_DIR> --set run.name=<name of OUT_DIR> --set data... --resume` continues training.
Otherwise it holds params and batch_stats only.

Files are loaded with `torch.load(..., weights_only=True)`; a checkpoint that pickles arbitrary objects
is only unpickled with --trust-pickle (unpickling can run code: only for files you trust).

The conversion itself is taco_jax.convert (checkpoint_io: files, torch_ckpt: tensors); this is its command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from taco_jax.convert import LAYOUTS, taco_jax_to_torch, torch_to_taco_jax  # noqa: E402
from taco_jax.errors import report_error  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status (2: a user error)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help=".pt checkpoint (or, with --to-torch, a taco_jax run/checkpoint directory)")
    ap.add_argument("output", help="taco_jax output directory (or, with --to-torch, the .pt file to write)")
    ap.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="key layout (default: detect)")
    ap.add_argument("--trust-pickle", action="store_true", help="allow full unpickling (runs code from the file)")
    ap.add_argument(
        "--allow-missing",
        action="store_true",
        help="convert despite missing/unexpected keys (missing variables are freshly initialised)",
    )
    ap.add_argument("--to-torch", action="store_true", help="export a taco_jax checkpoint to a PyTorch state_dict")
    args = ap.parse_args(argv)
    try:
        if args.to_torch:
            path = taco_jax_to_torch(args.input, args.output, args.layout)
            print(f"wrote {path}")
            return 0
        report = torch_to_taco_jax(args.input, args.output, args.layout, args.trust_pickle, args.allow_missing)
    except Exception as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage="conversion")
    print(f"converted {len(report['converted'])} tensors ({report['layout']} layout) -> {args.output}")
    for kind in ("missing", "unexpected", "ignored", "initialised"):
        if report[kind]:
            print(f"  {kind} ({len(report[kind])}): {', '.join(report[kind])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
