"""Checkpoints: damaged ones are reported in one line and skipped for the previous intact one, Orbax's
unfinished writes are no checkpoints, a damaged step can be saved again, and retention plus best-by-val work
across processes. Tiny pytrees stand in for a train state."""

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from taco_jax.checkpoint import (
    Checkpointer,
    CheckpointError,
    read_meta,
    resolve_checkpoint,
    restore_symbols,
)
from taco_jax.text import get_symbol_table

SYMBOLS = get_symbol_table("nvidia_english_v1").to_dict()


def _tree(step: int) -> dict:
    return {"params": {"w": jnp.arange(1000.0) + step}, "step": jnp.asarray(step, jnp.int32)}


def _write(ckpt_dir: Path, losses: dict, keep: int = 5) -> None:
    """Save one checkpoint per (step, val_loss) item, in order, then close."""
    with Checkpointer(ckpt_dir, keep=keep) as ckpt:
        for step, loss in losses.items():
            ckpt.save(step, _tree(step), {"step": step, "config": "unused", "symbols": SYMBOLS}, val_loss=loss)


def _largest_state_file(step_dir: Path) -> Path:
    return max((p for p in (step_dir / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _truncate(step_dir: Path) -> None:
    f = _largest_state_file(step_dir)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _zeros(step_dir: Path) -> None:
    f = _largest_state_file(step_dir)
    f.write_bytes(b"\0" * f.stat().st_size)


def _empty_dir(step_dir: Path) -> None:
    shutil.rmtree(step_dir)
    step_dir.mkdir()


DAMAGE = {
    "truncated_array_file": _truncate,
    "zeroed_array_file": _zeros,
    "empty_meta": lambda d: (d / "meta" / "metadata").write_text(""),
    "garbage_meta": lambda d: (d / "meta" / "metadata").write_text("{not json"),
    "missing_state": lambda d: shutil.rmtree(d / "state"),
    "missing_meta": lambda d: shutil.rmtree(d / "meta"),
    "empty_step_dir": _empty_dir,
}


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_latest_falls_back_to_the_previous_intact_one(tmp_path, caplog, kind):
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 1.0, 20: 0.9, 30: 0.8})
    DAMAGE[kind](ckpt_dir / "30")
    before = _snapshot(tmp_path)
    caplog.set_level(logging.WARNING)
    with Checkpointer(ckpt_dir) as ckpt:
        step, state, meta = ckpt.restore_latest(target=_tree(0))
        assert step == 20 and meta["step"] == 20
        np.testing.assert_array_equal(state["params"]["w"], np.arange(1000.0) + 20)
        warnings = _warnings(caplog)
        assert len(warnings) == 1 and str(ckpt_dir / "30") in warnings[0] and "damaged" in warnings[0]
        with pytest.raises(CheckpointError) as err:  # an explicit damaged step: one line, the path and cause
            ckpt.restore(30)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{ckpt_dir / '30'}: damaged checkpoint: ")
    assert len(message) < 300 and err.value.damaged
    assert _snapshot(tmp_path) == before  # nothing moved, written or deleted


def test_every_checkpoint_damaged_is_an_error_listing_them(tmp_path, caplog):
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 1.0, 20: 0.9})
    _truncate(ckpt_dir / "10")
    DAMAGE["garbage_meta"](ckpt_dir / "20")
    caplog.set_level(logging.WARNING)
    with (
        Checkpointer(ckpt_dir) as ckpt,
        pytest.raises(CheckpointError, match=r"every checkpoint is damaged \(steps 10, 20\)"),
    ):
        ckpt.restore_latest()
    assert len(_warnings(caplog)) == 2  # one per damaged checkpoint


def test_no_checkpoint_and_orbax_tmp_dirs(tmp_path, caplog):
    """A directory with nothing but unfinished Orbax writes (a killed writer) has no checkpoint; once there
    is one, the tmp directories are still ignored and a step of the same number saves normally."""
    ckpt_dir = tmp_path / "checkpoints"
    caplog.set_level(logging.WARNING)
    with Checkpointer(ckpt_dir) as ckpt:
        assert ckpt.restore_latest() is None and ckpt.latest_step() is None
    _write(tmp_path / "scratch", {40: 0.5})
    (tmp_path / "scratch" / "40").rename(ckpt_dir / "40.orbax-checkpoint-tmp")  # 0.12.8's name: <step>.<suffix>
    (ckpt_dir / "50.orbax-checkpoint-tmp-1712345678").mkdir()  # older Orbax: a timestamp after the suffix
    (ckpt_dir / "50.orbax-checkpoint-tmp-1712345678" / "state").mkdir()
    with Checkpointer(ckpt_dir) as ckpt:
        assert ckpt.restore_latest() is None and ckpt.all_steps() == []
    _write(ckpt_dir, {20: 0.7})
    assert _warnings(caplog) == []
    with Checkpointer(ckpt_dir) as ckpt:
        assert ckpt.latest_step() == 20 and ckpt.restore_latest(_tree(0))[0] == 20
        ckpt.save(40, _tree(40), {"step": 40}, val_loss=0.6)  # Orbax replaces its stale tmp directory
    assert resolve_checkpoint(tmp_path) == (ckpt_dir, 40)
    assert not (ckpt_dir / "40.orbax-checkpoint-tmp").exists()


def test_saving_a_damaged_step_again_moves_it_aside(tmp_path, caplog):
    """The run resumes from 20 while 30 is damaged, then reaches step 30 again."""
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 1.0, 20: 0.9, 30: 0.8})
    _truncate(ckpt_dir / "30")
    caplog.set_level(logging.WARNING)
    with Checkpointer(ckpt_dir, keep=2) as ckpt:
        assert ckpt.restore_latest(_tree(0))[0] == 20
        ckpt.save(30, _tree(31), {"step": 30}, val_loss=0.7)
        assert ckpt.restore_latest(_tree(0))[0] == 30
        np.testing.assert_array_equal(ckpt.restore(30, _tree(0))[0]["params"]["w"], np.arange(1000.0) + 31)
        assert ckpt.all_steps() == [20, 30] and ckpt.best_step() == 30
    assert (ckpt_dir / "30.damaged-1" / "state").is_dir()  # left for the user, never pruned
    moved = [w for w in _warnings(caplog) if "moved aside" in w]
    assert len(moved) == 1 and "30.damaged-1" in moved[0] and "truncated" in moved[0]


def test_retention_and_best_survive_a_new_process(tmp_path):
    """keep=2 is the latest 2 plus the best by val_loss, also for checkpoints an earlier process wrote."""
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 1.0, 20: 0.5, 30: 0.9}, keep=2)  # keeps 20 (best) and 30 (latest 2: 20, 30)
    with Checkpointer(ckpt_dir, keep=2) as ckpt:  # a new manager: the ranking comes from disk
        assert ckpt.best_step() == 20
        ckpt.save(40, _tree(40), {"step": 40}, val_loss=0.8)  # latest 2: 30, 40; best: 20
        ckpt.save(50, _tree(50), {"step": 50}, val_loss=0.95)  # latest 2: 40, 50; best: 20
        assert ckpt.best_step() == 20
    assert sorted(int(p.name) for p in ckpt_dir.iterdir()) == [20, 40, 50]
    with Checkpointer(ckpt_dir, read_only=True) as ckpt:
        assert ckpt.best_step() == 20 and ckpt.latest_step() == 50


def test_checkpoints_without_stored_metrics_are_kept(tmp_path):
    """Steps written before the loss was stored (no metrics item) cannot be ranked, so they are never pruned."""
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 0.2, 20: 0.5, 30: 0.4})
    for step in (10, 20, 30):
        shutil.rmtree(ckpt_dir / str(step) / "metrics")
    with Checkpointer(ckpt_dir, keep=1) as ckpt:
        assert ckpt.best_step() == 30  # none ranked: the latest
        ckpt.save(40, _tree(40), {"step": 40}, val_loss=0.9)
        ckpt.save(50, _tree(50), {"step": 50}, val_loss=0.8)  # 40 goes: neither latest nor best
        assert ckpt.best_step() == 50
    assert sorted(int(p.name) for p in ckpt_dir.iterdir()) == [10, 20, 30, 50]


def test_unreadable_metrics_file_leaves_the_step_unranked(tmp_path, caplog):
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 0.2, 20: 0.5})
    (ckpt_dir / "10" / "metrics" / "metrics").write_text("{oops")
    caplog.set_level(logging.WARNING)
    with Checkpointer(ckpt_dir) as ckpt:
        assert ckpt.best_step() == 20 and ckpt.restore_latest()[0] == 20
    assert _warnings(caplog) == []


def test_resolve_checkpoint_skips_a_damaged_best(tmp_path, caplog):
    ckpt_dir = tmp_path / "run" / "checkpoints"
    _write(ckpt_dir, {10: 0.5, 20: 0.3, 30: 0.9})
    _truncate(ckpt_dir / "20")  # the best by val_loss; the next best is 10, not the latest
    caplog.set_level(logging.WARNING, logger="taco_jax.checkpoint")
    assert resolve_checkpoint(tmp_path / "run") == (ckpt_dir, 10)
    assert restore_symbols(tmp_path / "run").to_dict() == SYMBOLS  # the same checkpoint, no second warning
    ours = [r.getMessage() for r in caplog.records if r.name == "taco_jax.checkpoint"]
    assert len(ours) == 1 and str(ckpt_dir / "20") in ours[0] and "truncated" in ours[0]
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint(ckpt_dir / "20")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{ckpt_dir / '20'}: damaged checkpoint")
    assert read_meta(ckpt_dir, 10)["step"] == 10
    DAMAGE["empty_meta"](ckpt_dir / "30")
    with pytest.raises(CheckpointError, match=r"30: damaged checkpoint: meta/metadata: empty file$"):
        read_meta(ckpt_dir, 30)


def test_a_target_of_another_structure_is_not_skipped_as_damage(tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    _write(ckpt_dir, {10: 1.0, 20: 0.9})
    wrong = {"params": {"w": jnp.zeros(1000), "extra": jnp.zeros(3)}, "step": jnp.asarray(0)}
    with Checkpointer(ckpt_dir) as ckpt, pytest.raises(CheckpointError, match="cannot restore") as err:
        ckpt.restore_latest(wrong)
    assert not err.value.damaged and "\n" not in str(err.value) and f"{ckpt_dir / '20'}" in str(err.value)


_RESTORE_DAMAGED = textwrap.dedent(
    """
    import logging, sys
    import jax
    from taco_jax.checkpoint import Checkpointer, CheckpointError

    logging.basicConfig(level=logging.WARNING)
    ckpt = Checkpointer(sys.argv[1])
    target = jax.device_get(ckpt.restore(10)[0])  # host arrays: the reads overlap most
    try:
        ckpt.restore(20, target=target)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
    print(ckpt.restore_latest(target)[0])
    ckpt.close()
    """
)


def test_restoring_a_damaged_checkpoint_prints_a_short_stderr(tmp_path):
    """Many arrays in flight when one read fails: once, this printed hundreds of lines of asyncio and
    TensorStore tracebacks ("Event loop is closed"), also at interpreter exit."""
    rng = np.random.default_rng(0)
    params = {f"w{i}": rng.standard_normal((int(rng.integers(50, 200)), 64)).astype(np.float32) for i in range(60)}
    state = {"params": params, "mu": params, "nu": params, "step": np.asarray(3)}
    ckpt_dir = tmp_path / "checkpoints"
    with Checkpointer(ckpt_dir) as ckpt:
        ckpt.save(10, state, {"step": 10})
        ckpt.save(20, state, {"step": 20})
    _truncate(ckpt_dir / "20")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", _RESTORE_DAMAGED, str(ckpt_dir)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["10"]
    lines = done.stderr.strip().splitlines()
    assert len(lines) < 15, done.stderr[-3000:]
    for noise in ("Traceback", "Event loop is closed", "Exception ignored", "never retrieved"):
        assert noise not in done.stderr
    assert any(f"error: {ckpt_dir / '20'}: damaged checkpoint: state/" in line for line in lines)
