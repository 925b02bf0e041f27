"""Synthesis says nothing on stderr unless something is wrong: no library warnings on normal text (Orbax's
read-only echoes, librosa on short outputs, matplotlib on titles it cannot draw), while the project's own
warnings (dropped characters, max_decoder_steps cuts) still appear; and every file it writes gets the mode an
ordinary open() would give it (0o666 minus the umask)."""

import logging
import os
import re
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
from conftest import tiny_model_config

from taco_jax.audio import _min_griffin_lim_frames, griffin_lim
from taco_jax.config import AudioConfig, Config, to_yaml
from taco_jax.logging_setup import setup_logging
from taco_jax.monitor import plot_alignment, plot_gate, plot_mel

UMASK = 0o027  # not the usual 0o022, so that a writer with a fixed mode (0o644, 0o600) shows up
NORMAL_TEXTS = ["Hello there.", "Привет, мир.", "日本\tcosts $5 and $6."]  # Cyrillic, CJK, a tab, two '$'
# Characters no plot font draws (CJK under DejaVu Sans), control characters, emoji, and text between two '$'
# that matplotlib would parse as (invalid) mathtext.
TITLES = ["Привет, мир.", "日本語のテキスト", "tab\there\nnewline", "Hello 😀 there", "pay $x^$ now", "$\\frobnicate$"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run directory holding one checkpoint of an untrained tiny model whose gate stops it after its first
    decoder step (gate_threshold 0: every sigmoid is above it), so each output is one step of r=3 frames: a
    complete, normal synthesis that also takes Griffin-Lim's shortest path."""
    from taco_jax.checkpoint import Checkpointer
    from taco_jax.model import build_model
    from taco_jax.text import get_symbol_table

    cfg = Config()
    cfg.text.symbols, cfg.text.add_eos = "english_eos_v1", True
    cfg.model = tiny_model_config(gate_threshold=0.0)
    cfg.data.buckets = [[40, 132], [64, 222]]  # mel lengths divisible by r=3
    cfg.run.griffin_lim_iters = 4
    table = get_symbol_table(cfg.text.symbols)
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    variables = _random_variables(model, cfg)
    run = tmp_path_factory.mktemp("quiet") / "run"
    ckpt = Checkpointer(run / "checkpoints", keep=1)
    ckpt.save(1, variables, {"config": to_yaml(cfg), "symbols": table.to_dict()})
    ckpt.close()
    return run


def _random_variables(model, cfg: Config) -> dict:
    """Untrained variables of the model's shapes: small random weights, batch norm at mean 0, variance 1. (Its
    own initialisers run op by op take 15 s on CPU; the shapes alone take a fraction of a second.)"""
    from taco_jax.train.state import init_variables

    r = cfg.model.n_frames_per_step
    shapes = jax.eval_shape(lambda key: init_variables(model, key, cfg.audio.n_mels, r), jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)

    def value(path, leaf):
        name = jax.tree_util.keystr(path)
        if name.startswith("['batch_stats']"):
            return np.full(leaf.shape, 1.0 if name.endswith("['var']") else 0.0, leaf.dtype)
        return (0.1 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(value, dict(shapes))


def _synthesize(run, out_dir, *args: str) -> subprocess.CompletedProcess:
    """`python -m taco_jax.synthesize` on the tiny run, under UMASK, as a user would run it."""
    command = [sys.executable, "-m", "taco_jax.synthesize", "--checkpoint", str(run), "--out-dir", str(out_dir)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | {"JAX_PLATFORMS": "cpu"}
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=120, umask=UMASK)


def _warning_lines(stderr: str) -> list[str]:
    """Lines of `stderr` that are log records at WARNING or above, or Python warnings."""
    pattern = re.compile(r" (WARNING|ERROR|CRITICAL) |Warning: ")
    return [line for line in stderr.splitlines() if pattern.search(line)]


@pytest.mark.slow  # this and the next: a command-line run each (~10 s on 2 cores, most of it JAX import + compile)
def test_normal_text_prints_nothing_on_stderr_and_writes_ordinary_file_modes(checkpoint, tmp_path):
    """Exit 0, an empty stderr, and every output file (and the directory) at the umask's ordinary mode."""
    out = tmp_path / "out"
    proc = _synthesize(checkpoint, out, *(a for text in NORMAL_TEXTS for a in ("--text", text)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"synthesis of normal text wrote to stderr:\n{proc.stderr}"
    assert proc.stdout.count("stopped") == len(NORMAL_TEXTS)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000.npy", "000.png", "000.wav", "001.npy", "001.png", "001.wav", "002.npy", "002.png",
                     "002.wav", "report.json"]  # fmt: skip
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()}
    assert set(modes.values()) == {oct(0o666 & ~UMASK)}, modes
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~UMASK)


@pytest.mark.slow
def test_the_projects_own_warnings_still_appear(checkpoint, tmp_path):
    """A dropped character and a max_decoder_steps cut are warned on stderr, and nothing else is."""
    overrides = ["--set", "model.gate_threshold=2.0", "--set", "model.max_decoder_steps=6"]  # never stops
    proc = _synthesize(checkpoint, tmp_path / "out", "--text", "Hello 😀 there.", *overrides)
    assert proc.returncode == 0, proc.stderr
    lines = _warning_lines(proc.stderr)
    assert len(lines) == 2 and len(proc.stderr.splitlines()) == 2, proc.stderr
    assert "taco_jax.synthesize WARNING --text 1: dropped characters not in the symbol table: '😀'" in lines[0]
    assert "taco_jax.synthesize WARNING --text 1: hit model.max_decoder_steps=6" in lines[1]


def test_cli_logging_drops_only_orbax_read_only_echoes(checkpoint, caplog):
    """Opening checkpoints read-only makes Orbax repeat the option back at WARNING; the commands' logging drops
    exactly those records, and other absl warnings pass."""
    import orbax.checkpoint as ocp

    setup_logging()
    with caplog.at_level(logging.WARNING, logger="absl"):
        options = ocp.CheckpointManagerOptions(read_only=True)  # Orbax: "... setting save_interval_steps=0."
        ocp.CheckpointManager(checkpoint / "checkpoints", options=options).close()  # "Given directory is read only"
        logging.getLogger("absl").warning("Metadata file does not exist: %s", "somewhere")
    assert [r.getMessage() for r in caplog.records] == ["Metadata file does not exist: somewhere"]


@pytest.mark.parametrize("frames", [2, 3, 4, 5, 6])
def test_griffin_lim_of_short_mels_is_silent_and_keeps_its_length(frames):
    """Outputs shorter than one n_fft window are inverted without librosa's "n_fft too large" warning and still
    give (frames - 1) * hop samples."""
    cfg = AudioConfig()
    assert _min_griffin_lim_frames(cfg) == 5  # n_fft 1024, hop 256: 4 hops fill one window
    mel = np.random.default_rng(frames).normal(-6.0, 1.0, (frames, cfg.n_mels)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wav = griffin_lim(mel, cfg, n_iters=4)
    assert wav.dtype == np.float32 and wav.shape == ((frames - 1) * cfg.hop_length,)
    assert np.isfinite(wav).all() and np.max(np.abs(wav)) <= 1.0


@pytest.mark.parametrize("title", TITLES)
def test_plot_titles_with_any_text_draw_without_warnings(title):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = [plot_alignment(np.zeros((4, 5)), title), plot_mel(np.zeros((6, 8)), title)]
        images.append(plot_gate(np.linspace(0.0, 1.0, 5), title))
    assert all(img.ndim == 3 and img.shape[2] == 3 for img in images)
