"""Convert NVIDIA/tacotron2 or DeepLearningExamples PyTorch checkpoints to taco_jax checkpoints, and back.

    python tools/convert_torch_ckpt.py tacotron2_statedict.pt runs/nvidia_pretrained
    python tools/convert_torch_ckpt.py runs/nvidia_pretrained exported.pt --to-torch [--layout dle]
    python tools/convert_torch_ckpt.py g_02500000 vocoders/v1 --hifigan [--hifigan-config config.json]
    python tools/convert_torch_ckpt.py vocoders/v1 exported/g_02500000 --hifigan --to-torch

The taco_jax checkpoint (<OUT_DIR>/checkpoints/<step>/{state,meta} + config.yaml + conversion_report.json)
uses configs/nvidia_ljspeech.yaml with the model dims inferred from the tensors and the NVIDIA 148-symbol
table; `taco_jax.checkpoint.restore_model(OUT_DIR)` loads it (synthesis, warm start). When the file holds an
Adam state (NVIDIA's train.py checkpoints: 'optimizer') the checkpoint is a full train state at the file's
iteration, with the Adam moments converted: `python -m taco_jax.train --config OUT_DIR/config.yaml --set
run.out_dir=<parent of OUT_DIR> --set run.name=<name of OUT_DIR> --set data... --resume` continues training.
Otherwise it holds params and batch_stats only.

Files are loaded with `torch.load(..., weights_only=True)`; a checkpoint that pickles arbitrary objects
is only unpickled with --trust-pickle (unpickling can run code: only for files you trust).

With --hifigan the input is a HiFi-GAN generator file (`g_XXXXXXXX` as the published training saves it, or a .pt
holding the generator's state_dict) and the output a taco_jax vocoder directory (config.json + generator.msgpack,
weight norm folded; `taco_jax.vocoder.load_vocoder` and `--vocoder` read it). The HiFi-GAN config.json is
--hifigan-config, else the one next to the input. With --to-torch it goes back: a vocoder directory (or vocoder
training run) to a g_ file with weight_g/weight_v keys, and config.json next to it unless one is there.

The conversion itself is taco_jax.convert (checkpoint_io: files, torch_ckpt: tensors); this is its command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from taco_jax.convert import LAYOUTS, taco_jax_to_torch, torch_to_taco_jax  # noqa: E402
from taco_jax.errors import report_error  # noqa: E402
from taco_jax.files import write_text_atomic  # noqa: E402


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
    ap.add_argument("--hifigan", action="store_true", help="convert a HiFi-GAN generator (g_ file <-> vocoder dir)")
    ap.add_argument("--hifigan-config", help="the HiFi-GAN config.json (default: the one next to the input)")
    args = ap.parse_args(argv)
    if args.hifigan_config and not args.hifigan:
        ap.error("--hifigan-config needs --hifigan")
    try:
        if args.hifigan:
            print(_convert_hifigan(args))
            return 0
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


def _convert_hifigan(args: argparse.Namespace) -> str:
    """The --hifigan conversion in the direction `args` asks for; returns what it wrote."""
    from taco_jax.convert import hifigan_flax_to_torch, write_hifigan_generator
    from taco_jax.vocoder import load_vocoder, save_vocoder
    from taco_jax.vocoder.files import CONFIG_FILE

    config, params = load_vocoder(args.input, config_path=args.hifigan_config, trust_pickle=args.trust_pickle)
    if not args.to_torch:
        save_vocoder(args.output, config, params)
        return f"converted HiFi-GAN generator {args.input} -> {args.output}"
    out = write_hifigan_generator(args.output, hifigan_flax_to_torch(params, config))
    beside = out.parent / CONFIG_FILE
    if beside.exists():
        return f"wrote {out} ({beside} already there: left as it was)"
    write_text_atomic(beside, json.dumps(config.to_json(), indent=2) + "\n")
    return f"wrote {out} and {beside}"


if __name__ == "__main__":
    raise SystemExit(main())
