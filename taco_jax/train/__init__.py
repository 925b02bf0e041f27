"""Training: everything between a config and a trained model.

- `state`: the train state, one pytree (`TrainState`).
- `objective`: the forward pass, loss terms, gradients and alignment metrics of a batch (`Objective`).
- `controllers`: every controller and the optax chain, built from the config in one place (`Controllers`).
- `step`: the pure, module-level `train_step` and `eval_step`, and their jit wrappers.
- `evaluation`, `host_control`, `metrics_log`, `run_dir`, `warm_start`: the host loop's parts.
- `loop`: `train(cfg, ..., callbacks=...)`, the host loop itself; `__main__`: the command line.
- `parallel`, `host_memory`: devices and processes, and the CPU host-memory setting of the command line.
"""
