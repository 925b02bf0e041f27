"""Shared fixtures: tiny model configs and a tiny eSpeak corpus, built once per session."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from taco_jax.config import ModelConfig  # noqa: E402


def tiny_model_config(**changes) -> ModelConfig:
    """A model small enough to compile and step in seconds on CPU."""
    base = dict(
        symbols_embedding_dim=32, encoder_embedding_dim=32, encoder_n_convolutions=2, prenet_dim=32,
        attention_rnn_dim=48, attention_dim=24, attention_location_n_filters=8, attention_location_kernel_size=7,
        decoder_rnn_dim=48, postnet_embedding_dim=24, postnet_n_convolutions=3, n_frames_per_step=3,
        max_decoder_steps=60,
    )  # fmt: skip
    base.update(changes)
    return ModelConfig(**base)


def random_batch(seed: int, text_len, mel_len, n_symbols: int, *, nan: bool = False):
    """`taco_jax.data.pipeline.random_batch` (80 mels); `nan` puts one NaN into the first item's mel."""
    from taco_jax.data.pipeline import random_batch as build

    batch = build(seed, text_len, mel_len, n_symbols)
    if nan:
        batch.mel[0, 3, 5] = np.nan
    return batch


def import_torch():
    """torch, which CI must have (it installs the CPU build); elsewhere the calling module is skipped without it."""
    if os.environ.get("CI"):
        try:
            import torch
        except ImportError:
            pytest.fail("torch is required in CI (pip install -e '.[torch]')", pytrace=False)
        return torch
    return pytest.importorskip("torch")


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Tests build the same small programs many times: a persistent compilation cache compiles each once."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


@pytest.fixture(scope="session")
def tiny_model_cfg() -> ModelConfig:
    return tiny_model_config()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A 36-utterance eSpeak corpus (train + val filelists), synthesized once per session."""
    from taco_jax.config import AudioConfig, DemoCorpusConfig
    from taco_jax.demo import build_demo_corpus

    root = tmp_path_factory.mktemp("corpus")
    cfg = DemoCorpusConfig(n_utterances=36, n_val=6, seed=3, min_seconds=0.8, max_seconds=2.4)
    train, val = build_demo_corpus(cfg, AudioConfig(), root=str(root / "demo"), progress=False)
    return train, val


def tiny_train_config(corpus, tmp_path, *overrides):
    """A full Config for a few-second training run on the tiny corpus."""
    from taco_jax.config import load_config

    return load_config(None, tiny_train_overrides(corpus, tmp_path, *overrides))


def tiny_config_file(corpus, tmp_path, *overrides) -> str:
    """`tiny_train_config` saved as tmp_path/tiny.yaml (for runs of the command line)."""
    from taco_jax.config import save_config

    path = str(tmp_path / "tiny.yaml")
    save_config(tiny_train_config(corpus, tmp_path, *overrides), path)
    return path


def tiny_train_overrides(corpus, tmp_path, *overrides) -> list[str]:
    """`tiny_train_config` as `--set` overrides (for runs of the command line)."""
    train, val = corpus
    base = [
        f"run.out_dir={tmp_path}/runs", "run.name=t", "run.max_steps=4", "run.log_every=2", "run.eval_every=4",
        "run.progress_bar=false", "run.sample_sentences=[]",
        "text.symbols=english_eos_v1", "text.add_eos=true",
        "data.corpus=filelists", f"data.train_filelist={train}", f"data.val_filelist={val}",
        f"data.cache_dir={tmp_path}/../mel_cache", "data.batch_size=4", "data.buckets=[[40,132],[64,222]]",
    ]  # fmt: skip
    base += [f"model.{k}={v}" for k, v in vars(tiny_model_config()).items()]
    return base + list(overrides)


def build_trainer(cfg, n_symbols: int, seed: int = 0, mel_mean=None):
    """(model, fresh train state, compiled train step) for `cfg`, assembled as the trainer assembles them."""
    from taco_jax.model import build_model
    from taco_jax.train.controllers import build_controllers
    from taco_jax.train.objective import objective_from_config
    from taco_jax.train.state import create_train_state
    from taco_jax.train.step import jit_train_step

    model = build_model(cfg.model, n_symbols, cfg.audio.n_mels)
    controllers = build_controllers(cfg)
    state = create_train_state(model, controllers.tx, seed, cfg.audio.n_mels, controllers.init())
    return model, state, jit_train_step(objective_from_config(cfg, model, mel_mean), controllers)
