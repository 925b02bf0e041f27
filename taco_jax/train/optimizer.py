"""NVIDIA's optimizer as an optax chain: clip by global norm, coupled L2, Adam, scheduled learning rate."""

from __future__ import annotations

import optax

from taco_jax.config import OptimConfig


def lr_schedule(cfg: OptimConfig) -> optax.Schedule:
    """Learning rate per optimizer step: constant, or linear warmup then stepwise-smooth exponential decay."""
    if cfg.schedule == "constant":
        return optax.constant_schedule(cfg.lr)
    if cfg.schedule == "warmup_exponential":
        decay = optax.exponential_decay(
            cfg.lr, transition_steps=cfg.decay_steps, decay_rate=cfg.decay_rate, end_value=cfg.min_lr
        )
        if cfg.warmup_steps <= 0:
            return decay
        warmup = optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps)
        return optax.join_schedules([warmup, decay], [cfg.warmup_steps])
    raise ValueError(f"config key 'optim.schedule': unknown schedule {cfg.schedule!r}")


def build_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
    """torch.optim.Adam(weight_decay=wd) after clip_grad_norm_: the L2 term is added to the clipped gradient."""
    if cfg.grad_clip <= 0:
        raise ValueError(f"config key 'optim.grad_clip' must be > 0, got {cfg.grad_clip}")
    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip),
        optax.add_decayed_weights(cfg.weight_decay),
        optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps),
        optax.scale_by_learning_rate(lr_schedule(cfg)),
    )
