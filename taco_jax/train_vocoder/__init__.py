"""Training and fine-tuning a HiFi-GAN vocoder, in the Tacotron trainer's style (`taco_jax.train`).

- `config`: the run's config schema (`VocoderConfig`), YAML files and `--set` overrides.
- `data`: filelists of wavs or of wav + teacher-forced mel pairs, random training segments, validation utterances.
- `models`: the generator's configuration and the three networks; `init`: fresh or fine-tuned starting weights.
- `state`: the train state pytree and AdamW with per-epoch exponential decay.
- `step`: the pure, module-level `train_step` (discriminators, then generator) and `val_step`, and their jits.
- `evaluation`, `loop`: validation and samples, and the host loop `train_vocoder(cfg, ...)`; `__main__`: the CLI.
"""
