"""Monitoring: metrics.jsonl, tensorboardX scalars/images/audio, and plots of alignments, mels and gates."""

from __future__ import annotations

import functools
import io
import json
import math
import os
from collections.abc import Mapping

import matplotlib.image
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taco_jax.files import atomic_output, write_text_atomic

# Plots are built on bare `Figure` objects with their own Agg canvas instead of pyplot: importing this module
# must not switch the process's backend (a notebook's inline one, say), and figures never enter pyplot's
# global registry, so nothing has to be closed and nothing leaks when a plot fails half-way.


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


@functools.lru_cache(maxsize=8)
def _glyphs(fonts: tuple) -> frozenset[int]:
    """The code points that at least one of these font files (matplotlib font paths) has a glyph for."""
    return frozenset(code for font in fonts for code in font_manager.get_font(font).get_charmap())


def _fonts_for(props: font_manager.FontProperties) -> tuple:
    """The font files matplotlib draws `props` text with: its fallback list (3.6+), else the one best match."""
    find_all = getattr(font_manager.fontManager, "_find_fonts_by_props", None)
    return tuple(find_all(props)) if find_all is not None else (font_manager.findfont(props),)


def _drawable(text: str, props: font_manager.FontProperties) -> str:
    """`text` as one line of plain text that the font of `props` can draw, so that no plot warns or fails on it.

    Sentences reach plot titles as the user typed them. Whitespace (a tab, a newline) becomes a space; a character
    with no glyph in the fonts (CJK under DejaVu Sans, control characters) becomes U+FFFD (or '?' where the font
    lacks that too) instead of an empty box and a "Glyph missing" warning per character; '$' is escaped, because
    matplotlib reads text between two dollar signs as mathtext ("$x^$" raises at drawing time).
    """
    glyphs = _glyphs(_fonts_for(props))
    missing = "\ufffd" if 0xFFFD in glyphs else "?"
    chars = (" " if ch.isspace() else ch if ord(ch) in glyphs else missing for ch in text)
    return "".join(chars).replace("$", r"\$")


def _set_title(ax, title: str) -> None:
    """`ax.set_title(title)` with the title made drawable in the title's own font (see `_drawable`)."""
    ax.set_title(_drawable(title, ax.title.get_fontproperties()))


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
    _set_title(ax, title)
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
    _set_title(ax, title)
    return _figure_to_array(fig)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB(A) float image [H, W, 3 or 4] (values clipped to [0, 1]) as a PNG, atomically."""
    with atomic_output(path) as tmp:
        matplotlib.image.imsave(tmp, np.clip(image, 0.0, 1.0), format="png")


def truncate_metrics(path: str | os.PathLike, last_step: int) -> None:
    """Keep the records of metrics.jsonl up to `last_step` (and drop a line cut short by a kill), atomically."""
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last_step:
                kept.append(line if line.endswith("\n") else line + "\n")
    write_text_atomic(path, "".join(kept))


class Monitor:
    """Writes metrics.jsonl and TensorBoard events under a run directory.

    ``enabled=False`` writes nothing (the non-primary processes of a multi-process run).
    """

    def __init__(self, run_dir: str, sampling_rate: int, enabled: bool = True, purge_after: int | None = None) -> None:
        """`purge_after`: a resumed run's restored step. The records of later steps (written before the run was
        interrupted, and about to be written again) are dropped from metrics.jsonl, and TensorBoard is told to
        discard its events after that step, so every step appears once and no curve doubles back."""
        self.run_dir = run_dir
        self.sampling_rate = sampling_rate
        self.enabled = enabled
        if not enabled:
            return
        from tensorboardX import SummaryWriter

        jsonl = os.path.join(run_dir, "metrics.jsonl")
        if purge_after is not None and os.path.exists(jsonl):
            truncate_metrics(jsonl, purge_after)
        purge_step = None if purge_after is None else purge_after + 1
        self.writer = SummaryWriter(os.path.join(run_dir, "tb"), purge_step=purge_step)
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
