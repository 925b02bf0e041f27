"""The tuner with real (tiny) training runs: failures recorded with their reason while the study goes on, the
report and best config, and a SIGKILLed worker whose study resumes (issue 19, acceptance 2 and 3)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from conftest import tiny_config_file, tiny_train_overrides

from taco_jax.config import load_config
from taco_jax.tune.space import load_space
from taco_jax.tune.study import TuneSettings, check_settings, finished_count, open_study, trial_alerts, work

ROOT = Path(__file__).resolve().parents[1]
TS = optuna.trial.TrialState


def test_failing_and_diverging_trials_are_recorded_and_the_study_goes_on(tiny_corpus, tmp_path):
    val, missing = str(tiny_corpus[1]), str(tmp_path / "missing.txt")
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {type: categorical, choices: [1.0e-3, 1.0e+6]}\n"
                     f"data.val_filelist: {{type: categorical, choices: [{val}, {missing}]}}\n")  # fmt: skip
    overrides = tiny_train_overrides(tiny_corpus, tmp_path, "run.max_steps=6", "run.eval_every=2",
                                     "control.nonfinite.max_rollbacks=0")  # fmt: skip
    s = TuneSettings(study="fails", space=load_space(space), overrides=overrides, out_dir=tmp_path / "runs",
                     n_trials=3, sampler="random", pruner="none", seed=0)  # fmt: skip
    check_settings(s)
    study = open_study(s)
    for lr, filelist in [(1e-3, val), (1e-3, missing), (1e6, val)]:
        study.enqueue_trial({"optim.lr": lr, "data.val_filelist": filelist})
    events = []
    work(s, study, on_trial_end=[trial_alerts(events.append)])
    trials = study.get_trials()
    assert [t.state for t in trials] == [TS.COMPLETE, TS.FAIL, TS.FAIL] and finished_count(study) == 3
    assert trials[0].user_attrs["reason"] == "completed" and trials[0].value > 0
    assert trials[1].user_attrs["reason"].startswith(f"failed: DataError: {missing}")
    assert trials[2].user_attrs["reason"].startswith("failed: training diverged: step ")
    assert trials[2].values is None and trials[1].values is None  # never scored as a number
    assert [(e.kind, e.fields["trial"], e.fields["state"]) for e in events] == [
        ("trial_finished", 0, "COMPLETE"), ("new_best", 0, "COMPLETE"), ("trial_finished", 1, "FAIL"),
        ("trial_finished", 2, "FAIL"),
    ]  # fmt: skip
    assert events[2].text.startswith("fails: trial 1 FAIL: failed: DataError: ")
    run_dir = Path(trials[0].user_attrs["run_dir"])
    assert run_dir == tmp_path / "runs" / "fails" / "trial_0000"
    assert load_config(str(run_dir / "config.yaml")).optim.lr == 1e-3  # the trial's config holds the drawn value

    from taco_jax.tune.report import write_report

    report = write_report(study, s.study_dir)
    assert report["trials"] == {"COMPLETE": 1, "FAIL": 2}
    assert [r["reason"] for r in report["trial_table"]] == [t.user_attrs["reason"] for t in trials]
    best = load_config(report["best"][0]["config"])
    assert best.optim.lr == 1e-3 and best.run.name == "fails_best" and best.data.val_filelist == val
    on_disk = json.loads((s.study_dir / "report" / "report.json").read_text())
    assert on_disk["best"][0]["number"] == 0
    assert (s.study_dir / "report" / "intermediate_values.png").read_bytes()[:4] == b"\x89PNG"


def _study_trials(db: Path, name: str) -> list:
    if not db.exists():
        return []
    try:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials()
    except (KeyError, sqlalchemy.exc.OperationalError):  # not created yet, or locked by a writer just now
        return []


@pytest.mark.slow
def test_killed_worker_trial_fails_and_is_retried_on_rerun(tiny_corpus, tmp_path):
    """SIGKILL in the middle of trial 1, then the same command again (with two workers): trial 0 stays as it was,
    trial 1 ends FAIL and its retry (same parameters) completes; three trials finish, none is left RUNNING."""
    config = tiny_config_file(tiny_corpus, tmp_path, "run.max_steps=30", "run.eval_every=10", "run.log_every=5",
                              "data.buckets=[[64,222]]")  # one bucket: one compilation per trial  # fmt: skip
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {type: float, low: 1.0e-4, high: 2.0e-3, log: true}\n")
    out = tmp_path / "runs"
    storage = out / "kill" / "study.db"
    cmd = [sys.executable, "-m", "taco_jax.tune", "--config", config, "--space", str(space), "--study", "kill",
           "--out-dir", str(out), "--trials", "3", "--sampler", "random", "--seed", "1", "--pruner", "none",
           "--heartbeat", "1", "--grace", "3"]  # fmt: skip
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until trial 1 has trained a few steps
        trials = _study_trials(storage, "kill")
        metrics = out / "kill" / "trial_0001" / "metrics.jsonl"
        if len(trials) == 2 and trials[1].state == TS.RUNNING and metrics.exists() and metrics.stat().st_size:
            break
        assert first.poll() is None, "the tuner ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("trial 1 never started training")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = _study_trials(storage, "kill")
    assert before[0].state == TS.COMPLETE and before[1].state == TS.RUNNING
    time.sleep(4)  # past the grace period: trial 1's heartbeat has stopped

    subprocess.run([*cmd, "--workers", "2"], cwd=ROOT, env=env, check=True, timeout=600)
    after = _study_trials(storage, "kill")
    assert after[0].state == TS.COMPLETE and after[0].value == before[0].value  # not lost, not repeated
    assert after[0].datetime_complete == before[0].datetime_complete
    assert after[1].state == TS.FAIL
    retries = [t for t in after if t.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1 and retries[0].state == TS.COMPLETE and retries[0].params == after[1].params
    assert not [t for t in after if t.state in (TS.RUNNING, TS.WAITING)]
    assert sum(t.state == TS.COMPLETE for t in after) == 3
    report = json.loads((out / "kill" / "report" / "report.json").read_text())
    assert report["trials"] == {"COMPLETE": 3, "FAIL": 1}
    assert re.fullmatch(r"failed: its worker \(pid \d+\) died", report["trial_table"][1]["reason"])
