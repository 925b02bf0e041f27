"""The tuner's search space, trial monitor and report arithmetic, without training (issue 19, acceptance 4)."""

import math
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from taco_jax.config import load_config
from taco_jax.tune.objectives import AlignmentThresholds, TrialMonitor, TuneError, parse_objectives
from taco_jax.tune.report import pruning_savings
from taco_jax.tune.space import SpaceError, load_space
from taco_jax.tune.storage import fail_dead_local_trials, storage_label

ROOT = Path(__file__).resolve().parents[1]

SPACE = """\
optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
data.batch_size: {type: categorical, choices: [8, 16]}
control.ga_weight.enabled:
  type: categorical
  choices: [false, true]
  when:
    true:
      control.ga_weight.max_loss_ratio: {type: float, low: 0.05, high: 0.5, log: true}
model.n_frames_per_step: {type: int, low: 1, high: 3}
"""


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def check_with_demo(extra):
    from taco_jax.train.controllers import build_controllers

    build_controllers(load_config("configs/demo.yaml", ["data.buckets=[[48,180]]", *extra]))


def test_space_reads_keys_lines_and_conditions(tmp_path):
    space = load_space(write(tmp_path, SPACE))
    assert [(p.key, p.line, p.kind) for p in space.all_params()] == [
        ("optim.lr", 1, "float"), ("data.batch_size", 2, "categorical"),
        ("control.ga_weight.enabled", 3, "categorical"), ("model.n_frames_per_step", 9, "int"),
        ("control.ga_weight.max_loss_ratio", 8, "float"),
    ]  # fmt: skip
    lr = space.params[0]
    assert (lr.low, lr.high, lr.log, lr.step) == (1e-4, 3e-3, True, None)
    off = optuna.trial.FixedTrial({"optim.lr": 1e-3, "data.batch_size": 8, "control.ga_weight.enabled": False,
                                   "model.n_frames_per_step": 3})  # fmt: skip
    assert space.suggest(off) == {"optim.lr": 1e-3, "data.batch_size": 8, "control.ga_weight.enabled": False,
                                  "model.n_frames_per_step": 3}  # fmt: skip
    on = optuna.trial.FixedTrial({"optim.lr": 1e-3, "data.batch_size": 16, "control.ga_weight.enabled": True,
                                  "control.ga_weight.max_loss_ratio": 0.2, "model.n_frames_per_step": 2})  # fmt: skip
    assert space.suggest(on)["control.ga_weight.max_loss_ratio"] == 0.2


FLOAT = "{type: float, low: 0.1, high: 0.2}"
GA_CHILD = "control.ga_weight.enabled:\n  type: categorical\n  choices: [false, true]\n  when:\n    true:\n      "
BAD_SPACES = [  # (space text, the error after "space.yaml:")
    (f"optim.learning_rate: {FLOAT}\n", r"1: optim\.learning_rate = 0\.1 .*optim\.learning_rate"),
    ("optim.lr: {type: float, low: 0.01, high: 0.001}\n", r"1: optim\.lr: low \(0\.01\) must be below high"),
    ("optim.lr: {type: float, low: 0.0, high: 0.1, log: true}\n", r"1: optim\.lr: a log distribution needs low > 0"),
    ("optim.lr: {type: gaussian, low: 0.0, high: 0.1}\n", r"1: optim\.lr: type 'gaussian' is not one of"),
    ("optim.lr: {type: float, low: 0.1, high: 0.2, mean: 3}\n", r"1: optim\.lr: unknown field\(s\) \['mean'\]"),
    ("optim.lr: 0.1\n", r"1: optim\.lr: expected a distribution"),
    ("optim.lr: {type: float, low: 0.1, high: .nan}\n", r"1: optim\.lr: high must be finite"),
    ("data.batch_size: {type: int, low: 2.5, high: 8}\n", r"1: data\.batch_size: low must be an integer"),
    ("data.batch_size: {type: categorical, choices: []}\n", r"1: data\.batch_size: choices must be a non-empty"),
    ("data.batch_size: {type: categorical, choices: [8, many]}\n", r"1: data\.batch_size = 'many' is refused"),
    ("\noptim.grad_clip: {type: float, low: -1.0, high: 1.0}\n", r"2: optim\.grad_clip = -1\.0 is refused"),
    ("model.n_frames_per_step: {type: int, low: 2, high: 7}\n", r"1: model\.n_frames_per_step = 7 .*multiple"),
    (f"a.b: {{type: categorical, choices: [1, 2], when: {{3: {{optim.lr: {FLOAT}}}}}}}\n", r"1: 3 is not among"),
    (f"optim.lr: {FLOAT}\noptim.lr: {FLOAT}\n", r"2: optim\.lr is tuned twice"),
    (GA_CHILD + "control.ga_weight.max_loss_ratio: {type: float, low: -0.5, high: 0.5}\n",
     r"6: control\.ga_weight\.max_loss_ratio = -0\.5 is refused"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", BAD_SPACES)
def test_bad_space_is_refused_naming_file_line_and_key(tmp_path, text, message):
    with pytest.raises(SpaceError, match=r"space\.yaml:" + message):
        load_space(write(tmp_path, text)).validate(check_with_demo)


def test_bad_space_stops_the_command_before_any_trial(tmp_path):
    space = write(tmp_path, "optim.lr: {type: float, low: 1.0e-4, high: 1.0e-3}\nmodel.attention_heads: "
                            "{type: int, low: 1, high: 4}\n")  # fmt: skip
    cmd = [sys.executable, "-m", "taco_jax.tune", "--config", "configs/demo.yaml", "--space", space, "--study", "s",
           "--out-dir", str(tmp_path / "runs")]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"error: {space}:2: model.attention_heads = 1 is refused" in done.stderr
    assert not (tmp_path / "runs").exists()  # no study, no trial directory


def test_objectives_parse():
    assert parse_objectives("val_loss") == ("val_loss",)
    assert parse_objectives("val_loss, quality") == ("val_loss", "quality")
    for bad in ("", "loss", "val_loss,val_loss"):
        with pytest.raises(TuneError, match="--objective"):
            parse_objectives(bad)


def val(loss, diag=0.0, focus=0.0):
    return {"val/loss": loss, "val/align_diag": diag, "val/align_focus": focus}


def test_monitor_reports_prunes_and_scores_alignment():
    reported, prune_at = [], {30}
    mon = TrialMonitor(lambda v, s: reported.append((s, v)), lambda: reported[-1][0] in prune_at,
                       AlignmentThresholds(diag=0.8, focus=0.5))  # fmt: skip
    assert mon(5, {"train/loss": 3.0}) is False  # log steps are not evaluations
    assert mon(10, val(2.0, 0.85, 0.6)) is False and mon.aligned_since == 10
    assert mon(20, val(1.5, 0.7, 0.6)) is False and mon.aligned_since is None  # lost: counts again from later
    assert mon(30, val(1.4, 0.9, 0.7)) is True and mon.stop_reason == "pruned: val/loss 1.4000 at step 30 (pruner)"
    assert reported == [(10, 2.0), (20, 1.5), (30, 1.4)]
    assert mon.align_steps(max_steps=40, eval_every=10) == 30.0
    never = TrialMonitor(None, None)
    never(10, val(2.0, 0.1, 0.1))
    assert never.align_steps(max_steps=40, eval_every=10) == 50.0  # one evaluation past the budget


def test_monitor_fails_non_finite_and_prunes_collapse():
    mon = TrialMonitor(None, None, AlignmentThresholds(diag=0.8, focus=0.5, collapse=0.3))
    assert mon(10, val(math.nan)) is True and mon.stop_reason == "failed: non-finite validation loss (nan) at step 10"
    mon = TrialMonitor(None, None, AlignmentThresholds(diag=0.8, focus=0.5, collapse=0.3))
    assert mon(10, val(2.0, 0.9, 0.6)) is False
    assert mon(20, val(1.9, 0.65, 0.6)) is False  # 0.25 below the best: not a collapse
    assert mon(30, val(1.9, 0.55, 0.6)) is True
    assert mon.stop_reason == "pruned: alignment collapsed (val/align_diag 0.900 -> 0.550) at step 30"


def frozen(number, state, steps, wall_s):
    t = optuna.trial.create_trial(state=state, value=1.0 if state == optuna.trial.TrialState.COMPLETE else None,
                                  user_attrs={"steps": steps, "wall_s": wall_s})  # fmt: skip
    t.number = number
    return t


def test_pruning_savings_by_hand():
    s = optuna.trial.TrialState
    trials = [frozen(0, s.COMPLETE, 100, 50.0), frozen(1, s.COMPLETE, 100, 70.0), frozen(2, s.COMPLETE, 100, 60.0),
              frozen(3, s.PRUNED, 20, 20.0), frozen(4, s.PRUNED, 40, 10.0), frozen(5, s.FAIL, 5, 99.0)]  # fmt: skip
    out = pruning_savings(trials, max_steps=100)
    # the median complete trial took 60 s: the pruned ones saved 60 - 20 and 60 - 10
    assert out["pruned_trials"] == 2 and out["steps_not_run"] == 80 + 60
    assert out["median_complete_trial_s"] == 60.0 and out["seconds_saved"] == pytest.approx(90.0)
    assert out["seconds_spent"] == pytest.approx(210.0) and out["share_saved"] == pytest.approx(90.0 / 300.0)


def test_journal_trial_of_a_dead_worker_is_failed_and_retried(tmp_path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(tmp_path / "j.log"))), study_name="j")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    trial = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    trial.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    alive = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    alive.set_user_attr("worker", f"{socket.gethostname()}:{subprocess.os.getpid()}")
    assert fail_dead_local_trials(study, max_retry=2) == 1
    states = [t.state for t in study.get_trials()]
    TS = optuna.trial.TrialState
    assert states == [TS.FAIL, TS.RUNNING, TS.WAITING]
    retry = study.get_trials()[2]
    assert retry.params == study.get_trials()[0].params and retry.system_attrs["failed_trial"] == 0
    assert "worker (pid" in study.get_trials()[0].user_attrs["reason"]


def test_storage_label_hides_passwords():
    assert storage_label("postgresql://tuner:s3cret@db:5432/optuna") == "postgresql://tuner:***@db:5432/optuna"
    assert storage_label("sqlite:///runs/s/study.db") == "sqlite:///runs/s/study.db"
    assert storage_label(None) == "sqlite (default)"


def test_database_trial_without_heartbeat_is_failed_and_retried(tmp_path):
    """A worker on another machine (a host name that is not this one) stopped beating: after the grace period
    the next worker fails its trial and queues it again."""
    from taco_jax.tune.storage import open_storage
    from taco_jax.tune.study import _fail_stale

    storage = open_storage(None, tmp_path, heartbeat_s=1, grace_s=1, max_retry=2)
    study = optuna.create_study(storage=storage, study_name="hb")
    trial = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    trial.set_user_attr("worker", "another-host:1")
    storage.record_heartbeat(trial._trial_id)
    _fail_stale(study, max_retry=2)
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.RUNNING]  # still beating
    time.sleep(2.5)
    _fail_stale(study, max_retry=2)
    failed, retry = study.get_trials()
    assert failed.state == optuna.trial.TrialState.FAIL and retry.state == optuna.trial.TrialState.WAITING
    assert retry.params == failed.params and retry.system_attrs["retry_history"] == [0]
    assert "worker" not in retry.user_attrs  # the retry's own worker records itself


@pytest.mark.parametrize("sampler, sampler_type", [("tpe", "TPESampler"), ("cmaes", "CmaEsSampler"),
                                                   ("random", "RandomSampler")])  # fmt: skip
@pytest.mark.parametrize("pruner, pruner_type", [("median", "MedianPruner"), ("percentile", "PercentilePruner"),
                                                 ("hyperband", "HyperbandPruner"), ("none", "NopPruner")])  # fmt: skip
def test_open_study_builds_each_sampler_and_pruner(tmp_path, sampler, sampler_type, pruner, pruner_type):
    from taco_jax.tune.study import TuneSettings, open_study

    space = load_space(write(tmp_path, "optim.lr: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}\n"))
    s = TuneSettings(study="s", space=space, config="configs/demo.yaml", out_dir=tmp_path, sampler=sampler,
                     pruner=pruner, objectives=("val_loss", "quality"))  # fmt: skip
    study = open_study(s)
    assert type(study.sampler).__name__ == sampler_type and type(study.pruner).__name__ == pruner_type
    assert len(study.directions) == 2 and study.user_attrs["objectives"] == ["val_loss", "quality"]
    with pytest.raises(TuneError, match="created with --objective val_loss,quality, not val_loss"):
        open_study(TuneSettings(study="s", space=space, config="configs/demo.yaml", out_dir=tmp_path))
