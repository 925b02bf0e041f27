"""Pure train and eval steps: `train_step(state, batch) -> (state, metrics)`."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from taco_jax import diagnostics, losses
from taco_jax.config import Config, GuidedAttentionConfig
from taco_jax.control import optim as optim_control
from taco_jax.control.build import build_ga_controller, build_phase_controller, ga_schedule
from taco_jax.data.pipeline import Batch
from taco_jax.model import Tacotron2, Tacotron2Outputs
from taco_jax.model.tacotron2 import mmi_vocab
from taco_jax.train.optimizer import lr_schedule
from taco_jax.train.state import TrainState


def ga_weight_schedule(cfg: GuidedAttentionConfig, step: jax.Array) -> jax.Array:
    """Scheduled guided-attention loss weight at a step, before any controller multiplier (0 when disabled)."""
    return ga_schedule(cfg)(step)


def tacotron2_loss(
    outputs: Tacotron2Outputs, batch: Batch, cfg: Config, ga_weight: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss = w_mel * (mel + mel_post) + w_gate * gate + ga_weight * guided attention (all masked)."""
    r = cfg.model.n_frames_per_step
    lc = cfg.loss
    dec_len = losses.decoder_lengths(batch.mel_len, r)
    # The gate speaks once per decoder step: its target is the frame target at the step's last frame.
    gate_target = batch.gate[:, r - 1 :: r]
    mel_loss = losses.masked_mel_loss(outputs.mel, batch.mel, batch.mel_len, lc.mel_loss)
    post_loss = losses.masked_mel_loss(outputs.mel_post, batch.mel, batch.mel_len, lc.mel_loss)
    gate_loss = losses.masked_gate_loss(outputs.gate, gate_target, dec_len, lc.gate_pos_weight)
    if lc.guided_attention.enabled:
        ga = lc.guided_attention
        ga_loss = losses.guided_attention_loss(outputs.alignments, batch.text_len, dec_len, ga.sigma, ga.normalization)
    else:
        ga_loss = jnp.zeros((), jnp.float32)
    total = lc.mel_weight * (mel_loss + post_loss) + lc.gate_weight * gate_loss + ga_weight * ga_loss
    terms = {"mel_loss": mel_loss, "mel_post_loss": post_loss, "gate_loss": gate_loss, "ga_loss": ga_loss}
    if outputs.tpse_style is not None:
        # TPS-GST learns to predict the reference's style from the text; its input is the detached encoder
        # output and its target the detached GST style, so it never pulls on the rest of the model.
        terms["tpse_loss"] = jnp.mean(jnp.abs(outputs.tpse_style - jax.lax.stop_gradient(outputs.gst_style)))
        total = total + lc.tpse_weight * terms["tpse_loss"]
    if outputs.coarse_mel is not None:
        # DDC (Coqui): the coarse decoder learns the mel itself and both alignments are pulled together;
        # neither side is a detached target. Guided attention guides the coarse decoder as the fine one.
        r_coarse = cfg.model.ddc_reduction_factor
        coarse_len = losses.decoder_lengths(batch.mel_len, r_coarse)
        terms["ddc_mel_loss"] = losses.masked_mel_loss(outputs.coarse_mel, batch.mel, batch.mel_len, lc.mel_loss)
        terms["ddc_align_loss"] = losses.alignment_consistency_loss(
            outputs.alignments, outputs.coarse_alignments, batch.text_len, dec_len, r, r_coarse
        )
        total = total + lc.ddc_weight * (terms["ddc_mel_loss"] + terms["ddc_align_loss"])
        if lc.guided_attention.enabled:
            ga = lc.guided_attention
            terms["ddc_ga_loss"] = losses.guided_attention_loss(
                outputs.coarse_alignments, batch.text_len, coarse_len, ga.sigma, ga.normalization
            )
            total = total + ga_weight * terms["ddc_ga_loss"]
    if outputs.mi_logits is not None and lc.mmi_ctc:
        # Not part of `total`: the train step weights it by the gradient adaptive factor.
        blank = 0 if cfg.model.mmi_blank == "first" else outputs.mi_logits.shape[-1] - 1
        terms["mmi_ctc_loss"] = losses.mmi_ctc_loss(outputs.mi_logits, dec_len, batch.text, batch.text_len, blank)
    return total, {"loss": total, **terms}


def _alignment_metrics(outputs: Tacotron2Outputs, batch: Batch, cfg: Config) -> dict[str, jax.Array]:
    """align_* of the decoder's alignments, and coarse_align_* of the DDC coarse decoder's (model.ddc)."""
    d = cfg.diagnostics

    def metrics(alignments, r):
        dec_len = losses.decoder_lengths(batch.mel_len, r)
        return diagnostics.alignment_metrics(
            alignments, batch.text_len, dec_len, band=d.band_tokens, coverage_threshold=d.coverage_threshold
        )

    out = metrics(outputs.alignments, cfg.model.n_frames_per_step)
    if outputs.coarse_alignments is not None:
        coarse = metrics(outputs.coarse_alignments, cfg.model.ddc_reduction_factor)
        out |= {f"coarse_{k}": v for k, v in coarse.items()}
    return out


def batch_speakers(model: Tacotron2) -> Callable[[Batch], jax.Array | None]:
    """The batch's speaker ids for a multi-speaker model, None for a single-speaker one."""
    return (lambda batch: batch.speaker) if model.cfg.n_speakers else (lambda batch: None)


def drop_frames(key: jax.Array, mel: jax.Array, mel_len: jax.Array, rate: float, mel_mean: jax.Array) -> jax.Array:
    """Frame dropout of teacher-forced inputs: each valid frame of mel [B, T, C] becomes mel_mean [C] with
    probability `rate` (a frame of average speech rather than silence-like zeros); padding is untouched."""
    drop = jax.random.bernoulli(key, rate, mel.shape[:2]) & losses.sequence_mask(mel_len, mel.shape[1])
    return jnp.where(drop[..., None], mel_mean.astype(mel.dtype), mel)


def make_train_step(
    model: Tacotron2, tx: optax.GradientTransformationExtraArgs, cfg: Config, mel_mean: np.ndarray | None = None
) -> Callable:
    """Returns the jit-compiled `train_step(state, batch) -> (state, metrics)`; the state is donated.

    `mel_mean` [n_mels] (the training set's mean log-mel) is needed by frame dropout (model.frame_dropout > 0).

    `tx` is `taco_jax.control.build.build_tx(cfg)`. Every controller runs inside this one program: the GA
    weight (schedule x multiplier, updated from the batch's band diagonality), the phase's LR factor, and
    through `tx` the clip threshold, LR scale and non-finite guard. A step whose loss or gradients are not
    finite leaves params, batch statistics and the GA controller as they were (the guard keeps the inner
    optimizer state and counts the step).
    """
    schedule = lr_schedule(cfg.optim)
    ga = build_ga_controller(cfg)
    phase = build_phase_controller(cfg)
    guard = cfg.control.nonfinite.enabled
    phase_on = cfg.control.phase.enabled
    ga_on = cfg.control.ga_weight.enabled and cfg.loss.guided_attention.enabled
    mmi_on = cfg.model.mmi and cfg.loss.mmi_ctc
    if mmi_on:
        need = model.n_symbols + (1 if cfg.model.mmi_blank == "last" else 0)
        if mmi_vocab(cfg.model, model.n_symbols) < need:
            raise ValueError(
                f"config key 'model.mmi_vocab' = {cfg.model.mmi_vocab}: the CTC loss labels are the {model.n_symbols} "
                f"symbol ids and needs {need} classes (set loss.mmi_ctc=false to train without it)"
            )

    frame_rate = cfg.model.frame_dropout
    speakers = batch_speakers(model)
    if frame_rate > 0 and mel_mean is None:
        raise ValueError("config key 'model.frame_dropout' > 0 needs the training set's mean mel (mel_mean)")

    def loss_fn(params, batch_stats, batch: Batch, rng, ga_weight):
        mel_in = batch.mel
        if frame_rate > 0:  # the targets below stay batch.mel
            rng, frame_key = jax.random.split(rng)
            mel_in = drop_frames(frame_key, batch.mel, batch.mel_len, frame_rate, jnp.asarray(mel_mean))
        outputs, new_vars = model.apply(
            {"params": params, "batch_stats": batch_stats},
            batch.text, batch.text_len, mel_in, batch.mel_len,
            train=True, rngs={"dropout": rng}, mutable=["batch_stats"], speaker=speakers(batch),
        )  # fmt: skip
        total, terms = tacotron2_loss(outputs, batch, cfg, ga_weight)
        return total, (terms, new_vars["batch_stats"], outputs)

    def mmi_value_and_grad(state: TrainState, batch: Batch, rng, ga_weight):
        """Loss and gradients with the CTC term weighted by the gradient adaptive factor: one forward pass,
        one backward pass per term (the vjp is reused)."""

        def parts(params):
            total, aux = loss_fn(params, state.batch_stats, batch, rng, ga_weight)
            return jnp.stack([total, aux[0]["mmi_ctc_loss"]]), aux

        values, vjp_fn, (terms, batch_stats, outputs) = jax.vjp(parts, state.params, has_aux=True)
        (g_main,) = vjp_fn(jnp.array([1.0, 0.0], values.dtype))
        (g_ctc,) = vjp_fn(jnp.array([0.0, 1.0], values.dtype))
        gaf = losses.gradient_adaptive_factor(g_main, g_ctc, cfg.loss.mmi_max_gaf)
        grads = jax.tree.map(lambda a, b: a + gaf.astype(a.dtype) * b, g_main, g_ctc)
        loss = values[0] + gaf * values[1]
        return loss, {**terms, "loss": loss, "mmi_gaf": gaf}, batch_stats, outputs, grads

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        rng = jax.random.fold_in(state.rng, state.step)
        ctrl = state.control
        ga_weight = ga.value(ctrl.ga, state.step)
        if mmi_on:
            loss, terms, batch_stats, outputs, grads = mmi_value_and_grad(state, batch, rng, ga_weight)
        else:
            (loss, (terms, batch_stats, outputs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                state.params, state.batch_stats, batch, rng, ga_weight
            )
        updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
        lr_factor = phase.lr_factor(ctrl.phase)
        if phase_on:  # disabled controllers add no operation: off is exactly the plain recipe's program
            updates = jax.tree.map(lambda u: u * lr_factor.astype(u.dtype), updates)
        params = optax.apply_updates(state.params, updates)
        align = _alignment_metrics(outputs, batch, cfg)
        ga_state = ctrl.ga
        if ga_on:
            ga_state = ga.update(
                ctrl.ga, align["align_diag"], state.step, only_rise=phase.only_rise(ctrl.phase),
                target_mult=phase.ga_target(ctrl.phase) if phase_on else None,
                ga_loss=terms["ga_loss"], rest_loss=loss - ga_weight * terms["ga_loss"],
            )  # fmt: skip
        if guard:  # a rejected step changes nothing but the guard's counters (and its LR-scale decrease)
            finite = optim_control.last_step_finite(opt_state)
            keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)  # noqa: E731
            params = keep(params, state.params)
            batch_stats = keep(batch_stats, state.batch_stats)
            ga_state = keep(ga_state, ctrl.ga)
        metrics = {f"train/{k}": v for k, v in terms.items()}
        metrics["train/grad_norm"] = optax.tree.norm(grads)  # before clipping
        metrics["train/lr"] = optim_control.current_lr(state.opt_state, schedule) * lr_factor  # this step's
        metrics["train/lr_scale"] = optim_control.lr_scale(opt_state)
        metrics["train/clip_threshold"] = optim_control.applied_clip_threshold(opt_state)
        metrics["train/ga_weight"] = ga_weight
        metrics["train/ga_mult"] = ga_state.mult
        metrics["train/ga_level"] = ga_state.level
        metrics["train/ga_ema_diag"] = ga_state.ema_diag
        if ga_on:  # +inf until the first observation
            metrics["train/ga_balance"] = ga_state.ema_balance
        metrics["train/phase"] = ctrl.phase.phase
        metrics["train/nonfinite"] = optim_control.nonfinite_count(opt_state)
        metrics["train/nonfinite_consecutive"] = optim_control.consecutive_nonfinite(opt_state)
        metrics.update({f"train/{k}": v for k, v in align.items()})
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
            control=ctrl._replace(ga=ga_state),
        )  # fmt: skip
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0)


def make_phase_update(cfg: Config) -> Callable:
    """Returns jit `phase_update(control, val_diag, val_loss) -> control`, called once per evaluation."""
    phase = build_phase_controller(cfg)

    def phase_update(control, val_diag, val_loss):
        return control._replace(phase=phase.update(control.phase, val_diag, val_loss))

    return jax.jit(phase_update)


def make_eval_step(model: Tacotron2, cfg: Config) -> Callable:
    """Returns jit `eval_step(params, batch_stats, batch) -> metrics`: teacher-forced, dropout off."""

    speakers = batch_speakers(model)

    def eval_step(params, batch_stats, batch: Batch) -> dict[str, jax.Array]:
        outputs = model.apply(
            {"params": params, "batch_stats": batch_stats},
            batch.text, batch.text_len, batch.mel, batch.mel_len, train=False, speaker=speakers(batch),
        )  # fmt: skip
        r = cfg.model.n_frames_per_step
        ga_weight = ga_weight_schedule(cfg.loss.guided_attention, jnp.zeros((), jnp.int32))
        _, terms = tacotron2_loss(outputs, batch, cfg, ga_weight)
        # val/loss is the reconstruction + gate loss: comparable across GA weights and schedules.
        terms["loss"] = cfg.loss.mel_weight * (terms["mel_loss"] + terms["mel_post_loss"]) + (
            cfg.loss.gate_weight * terms["gate_loss"]
        )
        dec_len = losses.decoder_lengths(batch.mel_len, r)
        gate_target = batch.gate[:, r - 1 :: r]
        metrics = dict(terms)
        metrics.update(_alignment_metrics(outputs, batch, cfg))
        metrics["gate_acc"] = diagnostics.gate_accuracy(outputs.gate, gate_target, dec_len)
        metrics["stop_frame_error"] = diagnostics.stop_frame_error(outputs.gate, dec_len) * r
        return metrics

    return jax.jit(eval_step)
