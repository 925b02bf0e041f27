"""Console logging for the command-line tools: taco_jax at INFO, libraries (JAX, Orbax/absl) at WARNING."""

from __future__ import annotations

import logging


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("taco_jax").setLevel(level)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.WARNING)
    except ImportError:  # absl comes with orbax; without it there is nothing to quiet
        pass
