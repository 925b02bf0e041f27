"""The README's notebook snippet runs as written, on a run directory and a wav where it expects them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_config

from taco_jax.train.loop import train

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    text = README.read_text()
    match = re.search(r"<!-- notebook-snippet -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no ```python block after <!-- notebook-snippet -->"
    return match.group(1)


def test_readme_notebook_snippet(tiny_corpus, tmp_path, monkeypatch):
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=2", "run.eval_every=2", "run.name=demo")
    result = train(cfg)
    assert Path(result.run_dir) == tmp_path / "runs" / "demo"
    wav = Path(tiny_corpus[1]).read_text().splitlines()[0].split("|")[0]
    shutil.copy(Path(tiny_corpus[1]).parent / wav, tmp_path / "please.wav")
    monkeypatch.chdir(tmp_path)  # the snippet names runs/demo and please.wav
    namespace: dict = {}
    exec(compile(_snippet(), "README.md (notebook snippet)", "exec"), namespace)

    terms, out, mel, frames = namespace["terms"], namespace["out"], namespace["mel"], namespace["frames"]
    # Hand-computed from the outputs: masked MSE over the real frames, and the total with every weight 1.
    sse = np.sum((np.asarray(out.mel[0, :frames], np.float64) - mel[0, :frames]) ** 2)
    assert float(terms["mel_loss"]) == pytest.approx(sse / (frames * mel.shape[2]), rel=1e-5)
    expected = sum(float(terms[k]) for k in ("mel_loss", "mel_post_loss", "gate_loss", "ga_loss"))
    assert float(namespace["total"]) == pytest.approx(expected, rel=1e-6)
    align = namespace["align"]
    assert set(align) == {"align_diag", "align_focus", "align_monotonic", "align_coverage"}
    assert all(0.0 <= float(v) <= 1.0 for v in align.values())
