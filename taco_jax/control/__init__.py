"""Adaptive training controllers, a leaf library in optax's style.

Each controller is a factory that validates its arguments eagerly (ValueError naming the argument) and returns
pure init/update functions over a NamedTuple state with fixed shapes and dtypes, so its state can live in the
train state, be checkpointed and change under `jax.jit` without recompiling. Gradient-side controllers are optax
transformations (their state sits in the optimizer state); the rest are plain init/update pairs. Nothing here
imports the config, the data pipeline or the training loop: `taco_jax.train.controllers` builds them from a config.

- `ga_weight`: guided-attention weight = schedule x multiplier driven by alignment quality.
- `phase`: training-phase machine on validation diagonality and loss.
- `plateau`: the relative-improvement rule shared by the phase machine and early stopping.
- `schedules`: base learning-rate and guided-attention schedules.
- `clip`: fixed and adaptive (percentile) gradient clipping by global norm.
- `optim`: LR scale (plateau), gradient accumulation, non-finite guard, and readers of the optimizer state.
"""

from taco_jax.control.clip import (
    ClipThresholdState,
    FixedClipState,
    PercentileClipThreshold,
    adaptive_clip_by_global_norm,
    fixed_clip_by_global_norm,
)
from taco_jax.control.ga_weight import GAWeightController, GAWeightState, ga_weight_controller
from taco_jax.control.optim import (
    AccumulationState,
    LRScaleState,
    accumulate,
    lr_plateau,
    nonfinite_guard,
    scale_by_lr_scale,
)
from taco_jax.control.phase import PHASE_NAMES, PhaseController, PhaseState, phase_controller
from taco_jax.control.plateau import improvement
from taco_jax.control.schedules import guided_attention_schedule, learning_rate_schedule, zero_schedule

__all__ = [
    "PHASE_NAMES",
    "AccumulationState",
    "ClipThresholdState",
    "FixedClipState",
    "GAWeightController",
    "GAWeightState",
    "LRScaleState",
    "PercentileClipThreshold",
    "PhaseController",
    "PhaseState",
    "accumulate",
    "adaptive_clip_by_global_norm",
    "fixed_clip_by_global_norm",
    "ga_weight_controller",
    "guided_attention_schedule",
    "improvement",
    "learning_rate_schedule",
    "lr_plateau",
    "nonfinite_guard",
    "phase_controller",
    "scale_by_lr_scale",
    "zero_schedule",
]
