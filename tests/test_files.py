"""Tests for taco_jax.files (atomic output) and the writers built on it: no partial files, ordinary permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf

from taco_jax.audio import save_wav
from taco_jax.config import AudioConfig, Config, from_yaml_string, save_config
from taco_jax.data.mel_cache import MelCache
from taco_jax.files import atomic_output, write_bytes_atomic, write_text_atomic
from taco_jax.monitor import Monitor, plot_alignment, save_png

# 0o077 is left out on purpose: it gives 0o600, the mode mkstemp creates, so it could not catch a missing chmod.
UMASKS = (0o022, 0o027, 0o002)


@pytest.fixture(params=UMASKS, ids=[f"umask{u:03o}" for u in UMASKS])
def umask(request) -> Iterator[int]:
    """Runs the test under each umask and restores the process umask afterwards (it is process-global)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: str | os.PathLike) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _plain_open_mode(directory: str | os.PathLike) -> int:
    """The permissions an ordinary open(path, "w") gives a new file under the current umask."""
    path = os.path.join(directory, "plain.txt")
    with open(path, "w") as f:
        f.write("x")
    return _mode(path)


def _leftovers(directory: str | os.PathLike) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".tmp-"))


def test_atomic_output_writes_and_replaces(tmp_path):
    target = tmp_path / "sub" / "out.txt"  # the parent does not exist yet
    write_text_atomic(target, "first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert _leftovers(target.parent) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_writer_leaves_target_untouched_and_no_temp(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old content")
    with pytest.raises(error), atomic_output(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)  # same directory: the rename cannot cross filesystems
        with open(tmp, "w") as f:
            f.write("half of the new")
        raise error("writer failed")
    assert target.read_text() == "old content"
    assert _leftovers(tmp_path) == []


def test_failed_writer_creates_no_target(tmp_path):
    target = tmp_path / "new.txt"
    with pytest.raises(RuntimeError), atomic_output(target):
        raise RuntimeError("writer failed")
    assert os.listdir(tmp_path) == []


def test_save_wav_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.wav"
    save_wav(target, np.zeros(100, np.float32), 16000)
    before = target.read_bytes()

    def failing_write(file, *args, **kwargs):
        with open(file, "wb") as f:
            f.write(b"RIFF")  # a truncated header, as a crash mid-write would leave
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save_wav(target, np.ones(100, np.float32) * 0.5, 16000)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_helper_mode_follows_umask(tmp_path, umask):
    expected = _plain_open_mode(tmp_path)
    assert expected == 0o666 & ~umask
    write_text_atomic(tmp_path / "t.txt", "x")
    write_bytes_atomic(tmp_path / "b.bin", b"x")
    assert _mode(tmp_path / "t.txt") == expected
    assert _mode(tmp_path / "b.bin") == expected


def test_writers_mode_follows_umask(tmp_path, umask):
    """config.yaml, wavs, pngs and mel cache files all get what a plain open() gives."""
    expected = _plain_open_mode(tmp_path)
    cfg = Config()
    save_config(cfg, tmp_path / "config.yaml")
    assert from_yaml_string((tmp_path / "config.yaml").read_text()) == cfg
    wav = 0.1 * np.sin(np.arange(4000, dtype=np.float32) / 10.0)
    save_wav(tmp_path / "a.wav", wav, 16000)
    save_png(tmp_path / "a.png", plot_alignment(np.random.default_rng(0).random((20, 10))))
    audio_cfg = AudioConfig(sampling_rate=16000)
    cache = MelCache(tmp_path / "mels", audio_cfg)
    cache.get(tmp_path / "a.wav")
    cached = cache.path_for(tmp_path / "a.wav")
    for path in (tmp_path / "config.yaml", tmp_path / "a.wav", tmp_path / "a.png", cached):
        assert _mode(path) == expected, f"{path}: mode {_mode(path):o}, plain open gives {expected:o}"
    assert _leftovers(tmp_path) == [] and _leftovers(os.path.dirname(cached)) == []


def test_run_files_share_permissions(tmp_path, umask):
    """The run directory's config.yaml (atomic) and metrics.jsonl (plain append) end up with the same mode."""
    save_config(Config(), tmp_path / "config.yaml")
    monitor = Monitor(str(tmp_path), sampling_rate=16000)
    try:
        monitor.scalars(1, {"loss": 1.5})
    finally:
        monitor.close()
    assert _mode(tmp_path / "metrics.jsonl") == _mode(tmp_path / "config.yaml") == 0o666 & ~umask
