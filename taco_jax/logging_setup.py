"""Console logging for the command-line tools: taco_jax at INFO, libraries (JAX, Orbax/absl) at WARNING.

Only the commands call `setup_logging`; the library itself never configures logging.
"""

from __future__ import annotations

import logging

# Orbax (which logs through absl's "absl" logger) warns at WARNING level whenever a CheckpointManager is opened
# with read_only=True: "Given directory is read only=DIR" on every construction, and "CheckpointManagerOptions.
# read_only=True, setting X" for each option it switches off to honour that flag. Both only repeat what the
# caller asked for (every restore opens the run's checkpoints read-only, several times per load), so the
# commands drop exactly these messages and keep every other absl/Orbax warning.
_ORBAX_READ_ONLY_ECHOES = ("Given directory is read only=", "CheckpointManagerOptions.read_only=True, setting")


class _DropOrbaxReadOnlyEchoes(logging.Filter):
    """Drops Orbax's read-only announcements (see _ORBAX_READ_ONLY_ECHOES); passes every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.getMessage().startswith(_ORBAX_READ_ONLY_ECHOES))


_ORBAX_FILTER = _DropOrbaxReadOnlyEchoes()  # one instance: addFilter ignores it when already installed


def setup_logging(level: int = logging.INFO) -> None:
    """Log taco_jax at `level` and libraries at WARNING to stderr, without Orbax's read-only echoes."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("taco_jax").setLevel(level)
    try:
        import absl.logging  # first: absl creates its own logger class for the "absl" logger
    except ImportError:  # absl comes with orbax; without it there is nothing to quiet
        return
    absl.logging.set_verbosity(absl.logging.WARNING)
    absl.logging.get_absl_logger().addFilter(_ORBAX_FILTER)
