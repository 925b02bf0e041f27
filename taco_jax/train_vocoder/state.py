"""The vocoder train state (one pytree) and the optimisers of the published recipe."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from taco_jax.train_vocoder.config import VocoderOptimConfig

__all__ = ["VocoderTrainState", "learning_rate", "make_optimizer", "new_state"]


class VocoderTrainState(flax.struct.PyTreeNode):
    step: jax.Array  # i32 training steps taken (each one discriminator and one generator update)
    gen_params: Any  # generator `params` (v, g, bias per conv with weight norm; kernel, bias without)
    disc_params: Any  # {"mpd": params, "msd": params}
    disc_stats: Any  # {"msd": batch_stats}: the spectral-norm power-iteration vectors of the first scale
    gen_opt: optax.OptState
    disc_opt: optax.OptState
    rng: jax.Array  # base PRNG key (HiFi-GAN's step draws nothing; kept for losses or augmentation that will)


def learning_rate(o: VocoderOptimConfig, steps_per_epoch: int) -> optax.Schedule:
    """lr * lr_decay ** floor(step / steps_per_epoch): PyTorch's ExponentialLR stepped at the end of each epoch,
    on the optimizer's own update count (which equals the train step)."""
    return optax.exponential_decay(o.lr, transition_steps=steps_per_epoch, decay_rate=o.lr_decay, staircase=True)


def make_optimizer(o: VocoderOptimConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW as torch.optim.AdamW: decoupled weight decay scaled by the (scheduled) learning rate, applied to
    every parameter (biases and weight-norm gains too). The generator and the discriminators each get one."""
    schedule = learning_rate(o, steps_per_epoch)
    return optax.adamw(schedule, b1=o.adam_b1, b2=o.adam_b2, eps=o.adam_eps, weight_decay=o.weight_decay)


def new_state(
    gen_params: Any, disc_params: Any, disc_stats: Any, tx: optax.GradientTransformation, key: jax.Array
) -> VocoderTrainState:
    """A state at step 0 with fresh optimizer states (one `tx` for the generator, one for the discriminators)."""
    state = VocoderTrainState(
        step=jnp.zeros((), jnp.int32),
        gen_params=gen_params,
        disc_params=disc_params,
        disc_stats=disc_stats,
        gen_opt=tx.init(gen_params),
        disc_opt=tx.init(disc_params),
        rng=key,
    )
    # The train step donates the state, and a buffer cannot be donated twice: every leaf gets its own. Placed on
    # the device explicitly ("committed"), as a state restored from a checkpoint is: jit compiles committed and
    # uncommitted arguments apart, and a resumed run would otherwise not find the fresh run's compiled step.
    state = jax.tree.map(lambda x: jnp.array(x, copy=True), state)
    return jax.device_put(state, jax.local_devices()[0])
