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
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.audio import griffin_lim, load_wav, mel_spectrogram, save_wav
from taco_jax.config import Config
from taco_jax.files import atomic_output, write_text_atomic
from taco_jax.model import Tacotron2
from taco_jax.text import SymbolTable, text_to_sequence

log = logging.getLogger(__name__)

TEXT_PAD_MULTIPLE = 32  # text lengths are padded to a multiple of this to bound recompilation


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

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int32 [tokens]) of `text` after the config's cleaners; characters outside the table are
        dropped with a warning."""
        ids, unknown = text_to_sequence(text, self.table, self.cfg.text.cleaners, self.cfg.text.add_eos)
        if unknown:
            log.warning("dropped characters not in the symbol table: %s (text: %r)", dict(unknown), text)
        if len(ids) == 0:
            raise ValueError(f"text cleans to nothing: {text!r}")
        return ids

    def __call__(self, texts: Sequence[str], batch_size: int = 8, variables=None) -> list[Synthesis]:
        """Synthesize `texts` in batches of `batch_size` (one result each, in order); `variables` replaces the
        synthesizer's own for this call (the trainer passes its current weights)."""
        variables = self.variables if variables is None else variables
        results: list[Synthesis] = []
        encoded = [self.encode(t) for t in texts]
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
        return results

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
