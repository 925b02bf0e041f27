"""The training objective of a Tacotron 2 on a batch: forward pass, loss terms, gradients, alignment metrics.

`Objective` holds the static settings (from the config, in `objective_from_config`) and exposes pure, jit-able
methods; the train and eval steps (`taco_jax.train.step`) call them. The loss itself is
`taco_jax.losses.tacotron2_loss` on plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from taco_jax import diagnostics, losses
from taco_jax.batch import Batch
from taco_jax.config import Config
from taco_jax.model import Tacotron2, Tacotron2Outputs
from taco_jax.model.tacotron2 import mmi_vocab

__all__ = ["GradientResult", "Objective", "drop_frames", "objective_from_config"]


def drop_frames(key: jax.Array, mel: jax.Array, mel_len: jax.Array, rate: float, mel_mean: jax.Array) -> jax.Array:
    """Frame dropout of teacher-forced inputs: each valid frame of mel [B, T, C] becomes mel_mean [C] with
    probability `rate` (a frame of average speech rather than silence-like zeros); padding is untouched."""
    drop = jax.random.bernoulli(key, rate, mel.shape[:2]) & losses.sequence_mask(mel_len, max_len=mel.shape[1])
    return jnp.where(drop[..., None], mel_mean.astype(mel.dtype), mel)


@dataclass(frozen=True)
class GradientResult:
    """What one forward and backward pass gives the train step."""

    loss: jax.Array  # f32 scalar: the optimised total (the CTC term weighted by its adaptive factor, if any)
    terms: dict[str, jax.Array]  # f32 scalars: loss, mel_loss, gate_loss, ga_loss, ga_total, ...
    batch_stats: Any  # the model's updated batch statistics
    outputs: Tacotron2Outputs
    grads: Any  # like params


@dataclass(frozen=True, eq=False)
class Objective:
    """Static settings of the Tacotron 2 objective; see `taco_jax.losses.tacotron2_loss` for the terms."""

    model: Tacotron2
    weights: losses.LossWeights  # guided_attention is replaced by the controller's weight at each step
    mel_loss: str = "mse"
    gate_pos_weight: float = 1.0
    guided_attention: bool = True
    ga_sigma: float = 0.2
    ga_normalization: str = "per_frame"
    ctc_blank: int | None = None  # the CTC term's blank id when it is trained (model.mmi and loss.mmi_ctc)
    max_gaf: float = 0.1  # cap of the CTC term's gradient adaptive factor
    frame_dropout: float = 0.0
    mel_mean: np.ndarray | None = None  # [n_mels] training set's mean log-mel (frame dropout's replacement)
    band_tokens: int = 3
    coverage_threshold: float = 0.5

    @property
    def r(self) -> int:
        return self.model.cfg.n_frames_per_step

    @property
    def r_coarse(self) -> int | None:
        return self.model.cfg.ddc_reduction_factor if self.model.cfg.ddc else None

    def speaker(self, batch: Batch) -> jax.Array | None:
        return batch.speaker if self.model.cfg.n_speakers else None

    def loss(self, outputs: Tacotron2Outputs, batch: Batch, ga_weight: jax.Array, reduction: str = "mean"):
        """`losses.tacotron2_loss` of the outputs against the batch: (total, terms)."""
        return losses.tacotron2_loss(
            outputs, mel=batch.mel, mel_len=batch.mel_len, gate=batch.gate, text_len=batch.text_len, r=self.r,
            weights=self.weights._replace(guided_attention=ga_weight), text=batch.text, mel_loss=self.mel_loss,
            gate_pos_weight=self.gate_pos_weight, ga_sigma=self.ga_sigma, ga_normalization=self.ga_normalization,
            guided_attention=self.guided_attention, r_coarse=self.r_coarse, ctc_blank=self.ctc_blank,
            reduction=reduction,
        )  # fmt: skip

    def _train_loss(self, params, batch_stats, batch: Batch, rng: jax.Array, ga_weight: jax.Array):
        mel_in = batch.mel
        if self.frame_dropout > 0:  # the targets stay batch.mel
            rng, frame_key = jax.random.split(rng)
            mel_in = drop_frames(frame_key, batch.mel, batch.mel_len, self.frame_dropout, jnp.asarray(self.mel_mean))
        outputs, new_vars = self.model.apply(
            {"params": params, "batch_stats": batch_stats},
            batch.text, batch.text_len, mel_in, batch.mel_len,
            train=True, rngs={"dropout": rng}, mutable=["batch_stats"], speaker=self.speaker(batch),
        )  # fmt: skip
        total, terms = self.loss(outputs, batch, ga_weight)
        return total, (terms, new_vars["batch_stats"], outputs)

    def gradients(self, params, batch_stats, batch: Batch, rng: jax.Array, ga_weight: jax.Array) -> GradientResult:
        """Training-mode forward pass, loss and gradients w.r.t. params.

        With the CTC term, it is weighted by the gradient adaptive factor: the largest weight (capped at
        ``max_gaf``) that keeps its gradient below the main loss's in every tensor; one forward pass, one
        backward pass per term (the vjp is reused).
        """
        if self.ctc_blank is None:
            (loss, (terms, new_stats, outputs)), grads = jax.value_and_grad(self._train_loss, has_aux=True)(
                params, batch_stats, batch, rng, ga_weight
            )
            return GradientResult(loss, terms, new_stats, outputs, grads)

        def parts(p):
            total, aux = self._train_loss(p, batch_stats, batch, rng, ga_weight)
            return jnp.stack([total, aux[0]["mmi_ctc_loss"]]), aux

        values, vjp_fn, (terms, new_stats, outputs) = jax.vjp(parts, params, has_aux=True)
        (g_main,) = vjp_fn(jnp.array([1.0, 0.0], values.dtype))
        (g_ctc,) = vjp_fn(jnp.array([0.0, 1.0], values.dtype))
        gaf = losses.gradient_adaptive_factor(g_main, g_ctc, self.max_gaf)
        grads = jax.tree.map(lambda a, b: a + gaf.astype(a.dtype) * b, g_main, g_ctc)
        loss = values[0] + gaf * values[1]
        return GradientResult(loss, {**terms, "loss": loss, "mmi_gaf": gaf}, new_stats, outputs, grads)

    def alignment_metrics(self, outputs: Tacotron2Outputs, batch: Batch, reduction: str = "mean") -> dict:
        """align_* of the decoder's alignments, and coarse_align_* of the DDC coarse decoder's."""

        def metrics(alignments, r):
            dec_len = losses.decoder_lengths(batch.mel_len, r=r)
            return diagnostics.alignment_metrics(
                alignments, batch.text_len, dec_len, band=self.band_tokens,
                coverage_threshold=self.coverage_threshold, reduction=reduction,
            )  # fmt: skip

        out = metrics(outputs.alignments, self.r)
        if outputs.coarse_alignments is not None:
            coarse = metrics(outputs.coarse_alignments, self.r_coarse)
            out |= {f"coarse_{k}": v for k, v in coarse.items()}
        return out


def objective_from_config(cfg: Config, model: Tacotron2, mel_mean: np.ndarray | None = None) -> Objective:
    """The objective as configured (`loss.*`, `model.frame_dropout`, `model.mmi*`, `diagnostics.*`).

    Raises:
      ValueError: naming the config key, when the CTC term cannot label the symbols or frame dropout has no mean.
    """
    lc = cfg.loss
    ctc_blank = None
    if cfg.model.mmi and lc.mmi_ctc:
        need = model.n_symbols + (1 if cfg.model.mmi_blank == "last" else 0)
        vocab = mmi_vocab(cfg.model, model.n_symbols)
        if vocab < need:
            raise ValueError(
                f"config key 'model.mmi_vocab' = {cfg.model.mmi_vocab}: the CTC loss labels are the {model.n_symbols} "
                f"symbol ids and needs {need} classes (set loss.mmi_ctc=false to train without it)"
            )
        ctc_blank = 0 if cfg.model.mmi_blank == "first" else vocab - 1
    if cfg.model.frame_dropout > 0 and mel_mean is None:
        raise ValueError("config key 'model.frame_dropout' > 0 needs the training set's mean mel (mel_mean)")
    ga = lc.guided_attention
    return Objective(
        model=model,
        weights=losses.LossWeights(mel=lc.mel_weight, gate=lc.gate_weight, tpse=lc.tpse_weight, ddc=lc.ddc_weight),
        mel_loss=lc.mel_loss, gate_pos_weight=lc.gate_pos_weight, guided_attention=ga.enabled, ga_sigma=ga.sigma,
        ga_normalization=ga.normalization, ctc_blank=ctc_blank, max_gaf=lc.mmi_max_gaf,
        frame_dropout=cfg.model.frame_dropout, mel_mean=None if mel_mean is None else np.asarray(mel_mean),
        band_tokens=cfg.diagnostics.band_tokens, coverage_threshold=cfg.diagnostics.coverage_threshold,
    )  # fmt: skip
