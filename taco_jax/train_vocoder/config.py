"""The vocoder run's configuration: dataclass schema, YAML files and dotted `--set a.b=v` overrides.

Same rules as the Tacotron trainer's `taco_jax.config`: the schema holds every setting, YAML and overrides are
merged onto it with OmegaConf structured configs, and an unknown key, a value of the wrong type or one outside
its allowed range is a `ConfigError` naming the key and where it came from. `audio` is the Tacotron's
`AudioConfig`: the settings of the input mels (what a taco_jax Tacotron predicts), which must agree with the
generator's sampling rate, hop and mel count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from taco_jax.config import AudioConfig, ConfigError, DemoCorpusConfig, load_structured, structured_from_yaml
from taco_jax.files import write_text_atomic

__all__ = [
    "DiscriminatorConfig",
    "GeneratorConfig",
    "InitConfig",
    "VocoderConfig",
    "VocoderDataConfig",
    "VocoderLossConfig",
    "VocoderOptimConfig",
    "VocoderRunConfig",
    "load_vocoder_train_config",
    "save_vocoder_train_config",
    "vocoder_config_from_yaml",
    "vocoder_config_to_yaml",
]


@dataclass
class VocoderRunConfig:
    name: str = "vocoder"  # run directory is <out_dir>/<name>[-N]
    out_dir: str = "runs"
    seed: int = 1234  # parameters, the data order and the segment offsets all follow from it
    max_steps: int = 1000  # optimizer steps (one discriminator and one generator update each)
    log_every: int = 10  # steps between train metric logs (the only times metrics leave the device)
    eval_every: int = 200  # steps between validations (+ audio samples + checkpoint + generator/ export)
    keep_checkpoints: int = 3  # latest K kept (the best by val/mel_l1 is always kept too)
    progress_bar: bool = True
    audio_samples: int = 2  # validation utterances written as audio and mel images per evaluation


@dataclass
class GeneratorConfig:
    """The generator's architecture: a published preset or config.json, optionally with keys replaced."""

    preset: str = "v1"  # "v1" | "v2" | "v3"; ignored when `config` or init.generator is set
    config: str = ""  # a published HiFi-GAN config.json (its model keys; training keys come from this file)
    # HifiganConfig keys replaced after the preset/config, e.g. {upsample_initial_channel: 128}
    overrides: dict[str, Any] = field(default_factory=dict)
    # Train the PyTorch parametrisation (g, v per conv, as the published training); false trains plain kernels.
    weight_norm: bool = True


@dataclass
class DiscriminatorConfig:
    # Channel widths of both discriminators divided by this: 1 = published; 2, 4 or 8 make CPU runs feasible
    # (the discriminators are nearly all of a step's cost). Fine-tuning from a published do_ file needs 1.
    width_divisor: int = 1


@dataclass
class VocoderDataConfig:
    corpus: str = "demo"  # "demo" (the embedded eSpeak NG corpus, as configs/demo.yaml) or "filelists"
    # Lines `wav_path` or `wav_path|anything...` (text ignored), or with `teacher_forced` `wav_path|mel_path.npy`;
    # relative paths are taken from the filelist's directory.
    train_filelist: str = ""
    val_filelist: str = ""  # "" = the last 5% of train (at least one line)
    # Input mels come from the filelist's .npy files ([frames, n_mels] float32, frames = 1 + samples // hop, a
    # Tacotron's teacher-forced output aligned to the wav) instead of taco_jax.audio.mel_spectrogram of the wav.
    teacher_forced: bool = False
    cache_dir: str = ""  # mel cache of wav filelists; "" = <user cache dir>/taco_jax/mels (shared with Tacotron)
    batch_size: int = 16
    segment_size: int = 8192  # audio samples per training segment; a multiple of the hop
    val_utterances: int = 4  # the first N validation lines, vocoded whole at each evaluation
    demo: DemoCorpusConfig = field(default_factory=DemoCorpusConfig)


@dataclass
class VocoderLossConfig:
    mel_weight: float = 45.0  # x mean |log-mel(real) - log-mel(generated)| in the generator loss (published)
    feature_weight: float = 1.0  # x feature matching (which already carries the published factor 2)
    adversarial_weight: float = 1.0


@dataclass
class VocoderOptimConfig:
    """AdamW for the generator and for both discriminators together (the published recipe)."""

    lr: float = 2.0e-4
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    adam_eps: float = 1.0e-8
    weight_decay: float = 0.01  # decoupled, x lr (torch.optim.AdamW's default)
    # lr x lr_decay ** epoch, the epoch counted in optimizer steps: floor(step / steps_per_epoch), as PyTorch's
    # ExponentialLR stepped once per epoch.
    lr_decay: float = 0.999
    steps_per_epoch: int = 0  # 0 = train utterances // batch_size (an epoch of the published loader)


@dataclass
class InitConfig:
    """Fine-tuning: start from published or converted weights instead of random ones (fresh runs only)."""

    generator: str = ""  # a g_XXXXXXXX / .pt file, a save_vocoder directory or a vocoder run directory
    generator_config: str = ""  # config.json of a published generator file without one beside it
    discriminators: str = ""  # a published do_XXXXXXXX file (its mpd and msd entries)
    trust_pickle: bool = False  # allow torch files that need full unpickling (only for files you trust)


@dataclass
class VocoderConfig:
    run: VocoderRunConfig = field(default_factory=VocoderRunConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: VocoderDataConfig = field(default_factory=VocoderDataConfig)
    loss: VocoderLossConfig = field(default_factory=VocoderLossConfig)
    optim: VocoderOptimConfig = field(default_factory=VocoderOptimConfig)
    init: InitConfig = field(default_factory=InitConfig)


def _check(cfg: VocoderConfig, source: str) -> None:
    """Raises ConfigError for the first key outside its range, naming it and `source`."""
    d, r, o = cfg.data, cfg.run, cfg.optim
    hop = cfg.audio.hop_length
    checks = [
        ("data.corpus", d.corpus in ("demo", "filelists"), "one of ('demo', 'filelists')"),
        ("data.train_filelist", d.corpus != "filelists" or bool(d.train_filelist), "a path when data.corpus=filelists"),
        ("data.teacher_forced", not (d.teacher_forced and d.corpus == "demo"), "false with data.corpus=demo"),
        ("data.batch_size", d.batch_size >= 1, ">= 1"),
        ("data.segment_size", d.segment_size >= hop and d.segment_size % hop == 0, f"a multiple of {hop} (hop)"),
        ("data.val_utterances", d.val_utterances >= 1, ">= 1"),
        ("run.max_steps", r.max_steps >= 1, ">= 1"),
        ("run.log_every", r.log_every >= 1, ">= 1"),
        ("run.eval_every", r.eval_every >= 1, ">= 1"),
        ("run.keep_checkpoints", r.keep_checkpoints >= 1, ">= 1"),
        ("run.audio_samples", r.audio_samples >= 0, ">= 0"),
        ("generator.preset", cfg.generator.preset in ("v1", "v2", "v3"), "one of ('v1', 'v2', 'v3')"),
        ("discriminator.width_divisor", cfg.discriminator.width_divisor in (1, 2, 4, 8), "one of (1, 2, 4, 8)"),
        ("optim.lr", o.lr > 0, "> 0"),
        ("optim.lr_decay", 0 < o.lr_decay <= 1, "0 < x <= 1"),
        ("optim.weight_decay", o.weight_decay >= 0, ">= 0"),
        ("optim.steps_per_epoch", o.steps_per_epoch >= 0, ">= 0 (0: train utterances // batch_size)"),
    ]
    for key, ok, expected in checks:
        if not ok:
            value = OmegaConf.select(OmegaConf.structured(cfg), key)
            raise ConfigError(f"{source}: config key '{key}' = {value!r}; expected {expected}")


def load_vocoder_train_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> VocoderConfig:
    """Schema defaults <- YAML file <- dotted overrides (`a.b=v`).

    Raises:
      ConfigError: an unknown key, a wrong type or a value out of range, naming the key and the file or `--set`.
    """
    return load_structured(
        VocoderConfig, path, overrides, _check, set_example="optim.lr=1e-4", overrides_source=_with_overrides
    )


def _with_overrides(source: str, overrides: Sequence[str]) -> str:
    return f"{source} + --set"


def vocoder_config_to_yaml(cfg: VocoderConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def vocoder_config_from_yaml(text: str, source: str = "<string>") -> VocoderConfig:
    return structured_from_yaml(VocoderConfig, text, source, _check)


def save_vocoder_train_config(cfg: VocoderConfig, path: str | os.PathLike) -> None:
    """The resolved config as YAML, written atomically."""
    write_text_atomic(path, vocoder_config_to_yaml(cfg))
