"""Monitoring: metrics.jsonl, tensorboardX scalars/images/audio, and plots of alignments, mels and gates."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping

import matplotlib.image
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taco_jax.files import atomic_output

# Plots are built on bare `Figure` objects with their own Agg canvas instead of pyplot: importing this module
# must not switch the process's backend (a notebook's inline one, say), and figures never enter pyplot's
# global registry, so nothing has to be closed and nothing leaks when a plot fails half-way.


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def _figure_to_array(fig: Figure) -> np.ndarray:
    """Render `fig` at 80 dpi, trimmed to its content -> RGB float32 [H, W, 3] in [0, 1]."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    buf.seek(0)
    return matplotlib.image.imread(buf, format="png")[..., :3]


def _plot_image(
    image: np.ndarray, xlabel: str, ylabel: str, title: str, figsize: tuple[float, float], **imshow
) -> np.ndarray:
    """image [rows, cols] drawn with rows upwards, plus a colour bar -> RGB float32 [H, W, 3] in [0, 1]."""
    fig = _new_figure(figsize)
    ax = fig.add_subplot()
    im = ax.imshow(image, aspect="auto", origin="lower", interpolation="none", **imshow)
    fig.colorbar(im, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _figure_to_array(fig)


def plot_alignment(alignment: np.ndarray, title: str = "") -> np.ndarray:
    """alignment [T_dec, N] -> RGB float32 image [H, W, 3] in [0, 1] (tokens on y, decoder steps on x)."""
    return _plot_image(alignment.T, "decoder step", "text token", title, (6, 4), vmin=0.0, vmax=1.0)


def plot_mel(mel: np.ndarray, title: str = "") -> np.ndarray:
    """mel [frames, n_mels] (log-mel) -> RGB float32 image [H, W, 3] in [0, 1] (mel channels on y)."""
    return _plot_image(mel.T, "frame", "mel channel", title, (8, 3))


def plot_gate(gate_prob: np.ndarray, title: str = "") -> np.ndarray:
    """gate_prob [steps] (sigmoid of the logits) -> RGB float32 image [H, W, 3] in [0, 1]."""
    fig = _new_figure((8, 2))
    ax = fig.add_subplot()
    ax.plot(gate_prob, color="tab:red")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("decoder step")
    ax.set_ylabel("stop probability")
    ax.set_title(title)
    return _figure_to_array(fig)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB(A) float image [H, W, 3 or 4] (values clipped to [0, 1]) as a PNG, atomically."""
    with atomic_output(path) as tmp:
        matplotlib.image.imsave(tmp, np.clip(image, 0.0, 1.0), format="png")


class Monitor:
    """Writes metrics.jsonl and TensorBoard events under a run directory.

    ``enabled=False`` writes nothing (the non-primary processes of a multi-process run).
    """

    def __init__(self, run_dir: str, sampling_rate: int, enabled: bool = True) -> None:
        self.run_dir = run_dir
        self.sampling_rate = sampling_rate
        self.enabled = enabled
        if not enabled:
            return
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(os.path.join(run_dir, "tb"))
        # Appended to line by line for the whole run, so not atomic; plain open gives it 0o666 & ~umask, the same
        # permissions taco_jax.files gives every other file of the run.
        self._jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a")  # noqa: SIM115 — kept open for the run

    def scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in metrics.items()}
        for k, v in clean.items():
            if math.isfinite(v):
                self.writer.add_scalar(k, v, step)
        record = {"step": int(step), **{k: (v if math.isfinite(v) else None) for k, v in clean.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        if self.enabled:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def audio(self, tag: str, step: int, wav: np.ndarray) -> None:
        if self.enabled:
            self.writer.add_audio(tag, np.clip(wav, -1.0, 1.0), step, sample_rate=self.sampling_rate)

    def text(self, tag: str, step: int, text: str) -> None:
        if self.enabled:
            self.writer.add_text(tag, text, step)

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self._jsonl.close()
