"""Hyperparameter search with Optuna: `python -m taco_jax.tune` (see `__main__`).

- `space`: the search-space file (config keys -> distributions, conditional keys), validated against the config.
- `objectives`: what a trial is scored on, and the training callback that reports to Optuna and prunes.
- `storage`: SQLite by default, a journal file, or a database URL; dead workers' trials failed and retried.
- `study`: the study, its samplers and pruners, one trial's training run, and a worker's loop.
- `report`: counts, the time pruning saved, the best config as YAML, importances and plots.
"""
