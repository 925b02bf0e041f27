"""Run-directory reliability: one process per run (lock), failed starts leave nothing half-made, resume trims the
logs to the restored step, an unwritable run directory stops the run at once, and CLI errors are one line."""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import tiny_config_file, tiny_train_config

from taco_jax.errors import report_error
from taco_jax.train import run_dir as run_dir_mod
from taco_jax.train.__main__ import main as train_main
from taco_jax.train.loop import train
from taco_jax.train.run_dir import RunDirError, RunLock


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in open(Path(run_dir) / "metrics.jsonl")]


def _tfrecords(path) -> list[bytes]:
    """The records of a TFRecord file: [u64 length][u32 crc][data][u32 crc] each (crcs not checked)."""
    data, out, i = Path(path).read_bytes(), [], 0
    while i < len(data):
        n = int.from_bytes(data[i : i + 8], "little")
        out.append(data[i + 12 : i + 12 + n])
        i += 12 + n + 4
    return out


def _each_key_once_per_step(records: list[dict]) -> None:
    seen = Counter((r["step"], k) for r in records for k in r if k != "step")
    assert [key for key, n in seen.items() if n > 1] == []


def test_lock_refuses_a_second_holder_and_reports_a_stale_one(tmp_path, caplog):
    with RunLock(tmp_path):
        # A second holder is another process in real life; flock locks belong to open file descriptions, so a
        # second RunLock in this process is refused the same way.
        with pytest.raises(RunDirError, match=rf"{tmp_path} is in use by process {os.getpid()} on "):
            RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text() == ""  # released cleanly: nothing stale
    (tmp_path / ".lock").write_text(json.dumps({"pid": 999999, "host": "h", "since": "yesterday"}))  # a SIGKILLed run
    with caplog.at_level(logging.WARNING, logger="taco_jax"), RunLock(tmp_path):
        pass
    stale = [r.getMessage() for r in caplog.records if "ended without releasing" in r.getMessage()]
    assert stale == [f"{tmp_path}: the previous process (process 999999 on h since yesterday) ended without "
                     "releasing the run; taking over"]  # fmt: skip


def test_a_second_process_cannot_attach_to_a_running_run(tiny_corpus, tmp_path):
    """A live holder in another process (a child holding the lock) makes --resume fail at once, one line."""
    first = train(tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=2", "run.eval_every=2"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from taco_jax.train.run_dir import RunLock; "
         f"RunLock({first.run_dir!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (Path(first.run_dir) / "config.yaml").read_text()
        with pytest.raises(RunDirError, match=f"is in use by process {holder.pid} "):
            train(tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=4"), resume=True)
        assert (Path(first.run_dir) / "config.yaml").read_text() == before  # untouched
    finally:
        holder.kill()
        holder.wait()


def test_resume_trims_the_logs_to_the_restored_step(tiny_corpus, tmp_path):
    """Steps 4-6 were logged, then the process died before checkpoint 6: the resumed run logs them once."""
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=6", "run.eval_every=3", "run.log_every=1")
    result = train(cfg)
    shutil.rmtree(Path(result.run_dir) / "checkpoints" / "6")  # as if killed before step 6's checkpoint
    with open(Path(result.run_dir) / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/lo')  # and in the middle of a line
    resumed = train(cfg, resume=True)
    assert resumed.run_dir == result.run_dir and resumed.step == 6
    records = _records(result.run_dir)
    _each_key_once_per_step(records)
    assert sorted({r["step"] for r in records if "train/loss" in r}) == [1, 2, 3, 4, 5, 6]
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    events = [Event.FromString(b) for p in sorted((Path(result.run_dir) / "tb").glob("events.*")) for b in
              _tfrecords(p)]  # fmt: skip
    purges = [e.step for e in events if e.HasField("session_log") and e.session_log.status == SessionLog.START]
    assert purges == [4]  # TensorBoard drops the first file's events from step 4 on


def test_resume_without_a_checkpoint_starts_again_and_says_so(tiny_corpus, tmp_path, caplog):
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=2", "run.eval_every=2", "run.log_every=1")
    result = train(cfg)
    shutil.rmtree(Path(result.run_dir) / "checkpoints")
    with caplog.at_level(logging.WARNING, logger="taco_jax"):
        again = train(cfg, resume=True)
    assert again.step == 2 and any("no checkpoint to resume from" in r.getMessage() for r in caplog.records)
    _each_key_once_per_step(_records(result.run_dir))


# Orbax's background writer of checkpoint 4 may still be busy when the directory goes; its late failure is
# reported by asyncio when its event loop is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_run_directory_that_disappears_stops_the_run_at_the_next_step(tiny_corpus, tmp_path):
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=8", "run.eval_every=4", "run.log_every=1")
    moved = tmp_path / "moved"

    def move_away(step, metrics):
        if step == 5 and "train/loss" in metrics:
            os.rename(tmp_path / "runs" / "t", moved)  # deleted, unmounted or renamed under the run

    with pytest.raises(RunDirError, match=r"runs/t: the run directory was moved, deleted or replaced; "
                       r"stopped at step 6, the last checkpoint is step 4"):  # fmt: skip
        train(cfg, callbacks=[move_away])
    gc.collect()  # the failed save's event loop reports its tasks here, not in a later test


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENOSPC])
def test_check_writable_names_the_directory_and_the_reason(tmp_path, monkeypatch, code):
    def refuse(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(run_dir_mod.os, "open", refuse)
    with pytest.raises(RunDirError, match=f"^{tmp_path}: the run directory is not writable: {os.strerror(code)}$"):
        run_dir_mod.check_writable(tmp_path)


def _cli(capsys, *argv) -> tuple[int, str]:
    status = train_main(list(argv))
    return status, capsys.readouterr().err


def test_cli_failed_start_is_one_line_and_leaves_no_run_directory(tiny_corpus, tmp_path, capsys):
    bad_list = tmp_path / "bad.txt"
    bad_list.write_text("wavs/missing.wav|Hello there.\n")
    config = tiny_config_file(tiny_corpus, tmp_path, f"data.train_filelist={bad_list}")
    status, err = _cli(capsys, "--config", config, "--no-progress")
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and f"{bad_list}:1" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "runs" / "t").exists()  # nothing half-made: the corrected rerun takes this name
    log = (tmp_path / "runs" / "t.failed-start.log").read_text()
    assert "Traceback" in log and str(bad_list) in log


def test_cli_resume_needs_a_run(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--resume"])
    assert exit_info.value.code == 2
    assert "--resume needs --config FILE" in capsys.readouterr().err
    status, err = _cli(capsys, "--resume", str(tmp_path))
    assert status == 2 and err.strip() == f"error: --resume {tmp_path}: not a run directory (no config.yaml)"


def test_report_error_statuses(capsys):
    from taco_jax.train.host_control import TrainingDiverged

    assert report_error(FileNotFoundError(2, "No such file or directory", "x.wav")) == 2
    assert capsys.readouterr().err == "error: x.wav: No such file or directory\n"
    assert report_error(TrainingDiverged("step 9: diverged")) == 1
    assert capsys.readouterr().err == "error: step 9: diverged\n"
    bug = KeyError("k")
    bug.add_note("full traceback: runs/t/train.log")
    assert report_error(bug, stage="training") == 1
    assert capsys.readouterr().err == "error during training: KeyError: 'k' (full traceback: runs/t/train.log)\n"


# ---------------------------------------------------------------------------------- damaged latest checkpoint


def _truncate_largest_array_file(step_dir: Path) -> None:
    f = max((p for p in (step_dir / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


DAMAGE = {
    "truncated_array_file": _truncate_largest_array_file,
    "empty_metadata": lambda d: (d / "meta" / "metadata").write_text(""),
    "missing_state_directory": lambda d: shutil.rmtree(d / "state"),
}


@pytest.fixture(scope="module")
def two_checkpoints(tiny_corpus, tmp_path_factory) -> Path:
    """A finished tiny run with checkpoints at steps 2 and 4 (copy it before changing it)."""
    home = tmp_path_factory.mktemp("two_checkpoints")
    cfg = tiny_train_config(tiny_corpus, home, "run.max_steps=4", "run.eval_every=2", "run.log_every=1")
    return Path(train(cfg).run_dir)


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "runs" / "t"
    shutil.copytree(run, copy)
    return copy


def _warnings(caplog) -> list[str]:
    """The project's warnings and errors. Not asyncio's: an event loop of an earlier test's failed background save
    may be collected during this one and report its tasks' exceptions then."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("taco_jax")]


def test_resume_skips_a_damaged_latest_checkpoint_with_one_warning(two_checkpoints, tmp_path, capsys, caplog):
    run = _copy_run(two_checkpoints, tmp_path)
    DAMAGE["truncated_array_file"](run / "checkpoints" / "4")
    with caplog.at_level(logging.INFO, logger="taco_jax"):
        status, err = _cli(capsys, "--resume", str(run), "--no-progress")
    assert status == 0, err
    skipped = [m for m in _warnings(caplog) if "damaged checkpoint" in m and m.startswith("skipping")]
    assert len(skipped) == 1 and f"{run}/checkpoints/4: damaged checkpoint: " in skipped[0], _warnings(caplog)
    assert "file is truncated" in skipped[0] and "\n" not in skipped[0]
    assert "Traceback" not in err and "Event loop is closed" not in err
    assert "restored step 2" in caplog.text
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["2", "4", "4.damaged-1"]  # kept for study
    _each_key_once_per_step(_records(run))


def test_resume_with_every_checkpoint_damaged_is_one_line_and_rewrites_nothing(two_checkpoints, tmp_path, capsys):
    run = _copy_run(two_checkpoints, tmp_path)
    for step in ("2", "4"):
        DAMAGE["empty_metadata"](run / "checkpoints" / step)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    status, err = _cli(capsys, "--resume", str(run), "--no-progress")
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert status == 2 and errors == [f"error: {run}/checkpoints: every checkpoint is damaged (steps 2, 4)"], err
    assert "Traceback" not in err
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "train.log"}
    assert after == {p: b for p, b in before.items() if p.name != "train.log"}  # config.yaml, logs, checkpoints
    assert "Traceback" in (run / "train.log").read_text()  # the full story is in the run's log only


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_synthesize_falls_back_from_a_damaged_latest_checkpoint(two_checkpoints, tmp_path, capsys, caplog, kind):
    from taco_jax.synthesize.__main__ import main as synthesize_main

    run = _copy_run(two_checkpoints, tmp_path)
    DAMAGE[kind](run / "checkpoints" / "4")
    status = synthesize_main(["--checkpoint", str(run), "--text", "Hello there.", "--out-dir", str(tmp_path / "out"),
                              "--set", "model.max_decoder_steps=6"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 0, err
    warnings = [m for m in _warnings(caplog) if "max_decoder_steps" not in m]
    assert len(warnings) == 1 and "checkpoints/4: damaged checkpoint" in warnings[0], warnings
    assert "Traceback" not in err and "Event loop is closed" not in err, err
    assert list((tmp_path / "out").glob("*.wav"))
