"""Text -> mel -> wav: the synthesis API (the command line is `python -m taco_jax.synthesize`, see __main__).

`load_synthesizer(checkpoint)` gives a `Synthesizer`; calling it on sentences gives one `Synthesis` each
(log-mel, alignment, gate); `write_outputs` writes per sentence NNN.wav (Griffin-Lim), NNN.png (alignment),
NNN.npy (log-mel [frames, n_mels]) and report.json (a list, in input order, of
{text, frames, seconds, stopped, wav, mel}).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.audio import griffin_lim, load_wav, mel_spectrogram, save_wav
from taco_jax.config import Config
from taco_jax.errors import UserError
from taco_jax.files import atomic_output, write_text_atomic
from taco_jax.model import Tacotron2
from taco_jax.text import SymbolTable, clean_text, text_to_sequence

log = logging.getLogger(__name__)

TEXT_PAD_MULTIPLE = 32  # text lengths are padded to a multiple of this to bound recompilation
_ARPABET_GROUP_RE = re.compile(r"\{[^{}]*\}")  # braced ARPAbet bypasses the cleaners (see taco_jax.text)


class TextInputError(UserError, ValueError):
    """A text the synthesizer cannot speak (nothing left after cleaning); the message names the input."""


def _format_dropped(dropped: Counter[str]) -> str:
    """The dropped characters, most frequent first, as in "'😀' x2, '#'"."""
    return ", ".join(repr(ch) if n == 1 else f"{ch!r} x{n}" for ch, n in dropped.most_common())


def _cleaned_away(text: str, cleaners: Sequence[str]) -> Counter[str]:
    """Characters of `text` (outside braced ARPAbet) that the cleaners delete outright, e.g. emoji under
    `convert_to_ascii`; `text_to_sequence` never sees them, so its own `dropped` Counter misses them."""
    plain = _ARPABET_GROUP_RE.sub(" ", text)
    gone = {ch for ch in set(plain) if not ch.isspace() and not clean_text(ch, cleaners).strip()}
    return Counter(ch for ch in plain if ch in gone)


@dataclass
class Synthesis:
    """One sentence's free-running synthesis."""

    text: str
    mel: np.ndarray  # [frames, n_mels] log-mel after the postnet
    alignment: np.ndarray  # [decoder steps, tokens]
    gate_prob: np.ndarray  # [decoder steps]
    frames: int
    stopped: bool  # the gate ended it (not max_decoder_steps)


@dataclass(frozen=True)
class Style:
    """The style of a GST model's speech: a reference mel, or one style token; None of both = the model's
    default (TPS-GST's prediction from the text, or no style). Scaled by `scale`."""

    reference: np.ndarray | None = None  # [frames, n_mels] log-mel
    token: int | None = None
    scale: float = 1.0

    @classmethod
    def from_wav(cls, path: str, cfg: Config, scale: float = 1.0) -> Style:
        """The style of a recording: its log-mel under `cfg.audio` (resampled to the model's rate)."""
        return cls(reference=mel_spectrogram(load_wav(path, cfg.audio.sampling_rate), cfg.audio), scale=scale)


class Synthesizer:
    """Batched free-running synthesis from a model and its variables.

    `variables` is the Flax variables dict ({"params": ..., "batch_stats": ...}); `seed` the key of the prenet
    dropout at inference (when the config keeps it on); `speaker` the speaker id of multi-speaker models.
    """

    def __init__(
        self, cfg: Config, model: Tacotron2, variables, table: SymbolTable, seed: int = 0, style: Style | None = None,
        speaker: int | None = None,
    ):  # fmt: skip
        self.cfg = cfg
        self.model = model
        self.variables = variables
        self.table = table
        self.rng = jax.random.PRNGKey(seed)
        style = style or Style()
        if (style.reference is not None or style.token is not None) and cfg.model.gst == "none":
            raise ValueError("a style reference or token needs a model with GST (config key 'model.gst')")
        reference = None if style.reference is None else jnp.asarray(style.reference, jnp.float32)[None]
        self._infer = jax.jit(
            lambda v, text, text_len, rng: model.apply(
                v, text, text_len, method=model.infer, rngs={"dropout": rng}, reference=reference,
                style_token=style.token, style_scale=style.scale, speaker=speaker,
            )
        )  # fmt: skip

    def encode(self, text: str, label: str = "text") -> np.ndarray:
        """Token ids (int32 [tokens]) of `text` after the config's cleaners.

        Characters the cleaners or the symbol table drop are logged in one warning naming `label` (e.g.
        "line 2"); a text left with no speakable symbol (ignoring pad, EOS and spaces) raises TextInputError,
        because the model would otherwise "speak" the lone EOS token as a few frames of noise.
        """
        cleaners = self.cfg.text.cleaners
        ids, dropped = text_to_sequence(text, self.table, cleaners, self.cfg.text.add_eos)
        dropped = dropped + _cleaned_away(text, cleaners)
        silent = {self.table.pad_id, self.table.eos_id} | {
            i for i, sym in enumerate(self.table.symbols) if sym.isspace()
        }  # fmt: skip
        if not any(int(i) not in silent for i in ids):
            if dropped:
                why = f"every character was dropped: {_format_dropped(dropped)}"
            else:
                why = "empty text" if not text.strip() else "the text cleans to nothing"
            shown = text.replace("\n", "\\n")  # the message stays one line
            raise TextInputError(f'{label}: nothing to speak in "{shown}" ({why})')
        if dropped:
            log.warning(
                "%s: dropped characters not in the symbol table: %s (text: %r)", label, _format_dropped(dropped), text
            )
        return ids

    def __call__(
        self, texts: Sequence[str], batch_size: int = 8, variables=None, labels: Sequence[str] | None = None,
        warn_cut: bool | None = None,
    ) -> list[Synthesis]:  # fmt: skip
        """Synthesize `texts` in batches of `batch_size` (one result each, in order); `variables` replaces the
        synthesizer's own for this call (the trainer passes its current weights).

        Every text is encoded (and refused with TextInputError) before any is synthesized. `labels` name the
        inputs in messages (default "text 1", "text 2", ...). `warn_cut` logs a warning for each item that hit
        max_decoder_steps; by default only without `variables`, as the trainer's early models never stop.
        """
        warn_cut = variables is None if warn_cut is None else warn_cut
        variables = self.variables if variables is None else variables
        labels = list(labels) if labels is not None else [f"text {i + 1}" for i in range(len(texts))]
        results: list[Synthesis] = []
        encoded = [self.encode(t, label) for t, label in zip(texts, labels, strict=True)]
        for start in range(0, len(texts), batch_size):
            chunk = encoded[start : start + batch_size]
            n_real = len(chunk)
            width = -(-max(len(x) for x in chunk) // TEXT_PAD_MULTIPLE) * TEXT_PAD_MULTIPLE
            b = batch_size if len(texts) > batch_size else n_real
            chunk = chunk + [chunk[-1]] * (b - n_real)  # a fixed batch size: one program per text width
            text = np.zeros((b, width), np.int32)
            for i, ids in enumerate(chunk):
                text[i, : len(ids)] = ids
            text_len = np.array([len(x) for x in chunk], np.int32)
            out = jax.device_get(self._infer(variables, jnp.asarray(text), jnp.asarray(text_len), self.rng))
            r = self.cfg.model.n_frames_per_step
            for i in range(n_real):
                frames = int(out.lengths[i])
                steps = frames // r
                results.append(
                    Synthesis(
                        text=texts[start + i],
                        mel=np.asarray(out.mel_post[i, :frames], np.float32),
                        alignment=np.asarray(out.alignments[i, :steps, : text_len[i]]),
                        gate_prob=np.asarray(jax.nn.sigmoid(out.gate[i, :steps])),
                        frames=frames,
                        stopped=bool(out.stopped[i]),
                    )
                )
                if warn_cut and not results[-1].stopped:
                    self._warn_cut(labels[start + i], texts[start + i])
        return results

    def _warn_cut(self, label: str, text: str) -> None:
        """Warn that an item ran to max_decoder_steps: the gate never ended it, so the speech may be cut off."""
        steps = self.cfg.model.max_decoder_steps
        log.warning(
            "%s: hit model.max_decoder_steps=%d before the gate stopped it; the output may be cut short "
            "(raise the limit with --set model.max_decoder_steps=N or split the text): %r", label, steps, text,
        )  # fmt: skip

    def vocode(self, mel: np.ndarray, n_iters: int | None = None) -> np.ndarray:
        """Griffin-Lim waveform (float32 [samples] at cfg.audio.sampling_rate) of a log-mel [frames, n_mels]."""
        return griffin_lim(mel, self.cfg.audio, n_iters or self.cfg.run.griffin_lim_iters)


def write_outputs(synth: Synthesizer, results: list[Synthesis], out_dir: str) -> list[dict]:
    """Write NNN.wav / NNN.png / NNN.npy for each result and report.json; returns the report."""
    from taco_jax.monitor import plot_alignment, save_png

    os.makedirs(out_dir, exist_ok=True)
    report = []
    sr = synth.cfg.audio.sampling_rate
    for i, res in enumerate(results):
        stem = f"{i:03d}"
        save_wav(os.path.join(out_dir, f"{stem}.wav"), synth.vocode(res.mel), sr)
        save_png(os.path.join(out_dir, f"{stem}.png"), plot_alignment(res.alignment, res.text[:60]))
        with atomic_output(os.path.join(out_dir, f"{stem}.npy")) as tmp:
            np.save(tmp, res.mel)
        report.append(
            {
                "text": res.text,
                "frames": res.frames,
                "seconds": res.frames * synth.cfg.audio.hop_length / sr,
                "stopped": res.stopped,
                "wav": f"{stem}.wav",
                "mel": f"{stem}.npy",
            }
        )
    write_text_atomic(os.path.join(out_dir, "report.json"), json.dumps(report, indent=2))
    return report


def load_synthesizer(
    checkpoint: str, overrides: Sequence[str] = (), seed: int = 0, reference_wav: str | None = None,
    style_token: int | None = None, style_scale: float = 1.0, speaker: int | None = None,
) -> Synthesizer:  # fmt: skip
    """A Synthesizer for a run directory, checkpoints directory or step directory, with config `overrides`
    ("key=value"); GST models take a `reference_wav` or a `style_token`, scaled by `style_scale`."""
    from taco_jax.checkpoint import restore_model, restore_symbols

    cfg, model, variables = restore_model(checkpoint, overrides)
    if reference_wav is not None:
        style = Style.from_wav(reference_wav, cfg, style_scale)
    else:
        style = Style(token=style_token, scale=style_scale)
    return Synthesizer(cfg, model, variables, restore_symbols(checkpoint), seed, style, speaker)
