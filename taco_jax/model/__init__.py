"""Flax Linen Tacotron 2."""

from taco_jax.model.tacotron2 import InferenceOutputs, Tacotron2, Tacotron2Outputs, build_model

__all__ = ["InferenceOutputs", "Tacotron2", "Tacotron2Outputs", "build_model"]
