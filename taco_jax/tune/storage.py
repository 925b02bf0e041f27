"""Where a study lives: SQLite in its run directory (the default), a journal file, or any database URL.

- no `--storage`: `sqlite:///<out_dir>/<study>/study.db`. Rerunning the same command resumes the study.
- `journal` or `journal:PATH`: Optuna's journal file (default `<out_dir>/<study>/journal.log`), made for several
  processes on one machine.
- any SQLAlchemy URL (`postgresql://...`, `mysql+pymysql://...`): workers on several machines share it. A URL
  with a password belongs in the environment variable `TACO_JAX_TUNE_STORAGE`, not on a command line.

A trial whose worker died (SIGKILL, lost machine) is marked FAIL and retried with the same parameters, found in
two ways before a worker starts its next trial: a RUNNING trial whose worker process on this host no longer
exists (at once, any storage; Optuna's journal storage has no other way), and, with database storages (SQLite
included), a trial whose heartbeat stopped for longer than the grace period (workers on other machines).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from taco_jax.tune.objectives import TuneError

log = logging.getLogger("taco_jax.tune")

__all__ = ["STORAGE_ENV", "fail_dead_local_trials", "mark_worker", "open_storage", "requeue", "storage_label"]

STORAGE_ENV = "TACO_JAX_TUNE_STORAGE"
_WORKER_ATTR = "worker"  # "host:pid" of the process running the trial (journal storages)


def open_storage(spec: str | None, study_dir: Path, heartbeat_s: int, grace_s: int, max_retry: int):
    """An Optuna storage for `spec` (see the module docstring); creates `study_dir`."""
    spec = spec or os.environ.get(STORAGE_ENV) or None
    study_dir.mkdir(parents=True, exist_ok=True)
    if spec is None or spec == "sqlite":
        spec = f"sqlite:///{_created_sqlite(study_dir.resolve() / 'study.db')}"
    if spec == "journal" or spec.startswith("journal:"):
        path = spec.partition(":")[2] or str(study_dir / "journal.log")
        return JournalStorage(JournalFileBackend(path))
    if "://" not in spec:
        raise TuneError(f"--storage {storage_label(spec)!r}: expected 'journal', 'journal:PATH' or a database URL")
    engine = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite") else None  # waits out other writers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
        return RDBStorage(
            spec, engine_kwargs=engine, heartbeat_interval=heartbeat_s, grace_period=grace_s,
            heartbeat_stale_trial_callback=lambda study, trial: requeue(study, trial, max_retry),
        )  # fmt: skip


def _created_sqlite(db: Path) -> Path:
    """`db`, created with Optuna's schema first if missing: under a temporary name, then hard-linked into place,
    so that no process (another worker, a reader) ever opens a database whose schema is half made."""
    if db.exists():
        return db
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        RDBStorage(f"sqlite:///{tmp}").engine.dispose()  # creates the tables and stamps the schema version
        try:
            os.link(tmp, db)  # atomic, and fails if another process got there first: its database is as good
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return db


def storage_label(spec: str | None) -> str:
    """The storage as it may be printed or written: a URL's password replaced by ***."""
    if not spec or "://" not in spec:
        return spec or "sqlite (default)"
    scheme, _, rest = spec.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return spec
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def mark_worker(trial: optuna.Trial) -> None:
    """Records which process runs `trial` (the journal storage's stand-in for a heartbeat)."""
    trial.set_user_attr(_WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")


def fail_dead_local_trials(study: optuna.Study, max_retry: int) -> int:
    """RUNNING trials whose worker process on this host is gone -> FAIL, retried with the same parameters (up to
    `max_retry` times). Returns how many were failed."""
    host, failed = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(t.user_attrs.get(_WORKER_ATTR, "")).partition(":")
        if worker_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "reason", f"failed: its worker (pid {pid}) died")
        if study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
            requeue(study, study._storage.get_trial(t._trial_id), max_retry)
            log.warning("trial %d: its worker (pid %s) died: marked FAIL and queued again", t.number, pid)
            failed += 1
    return failed


# What a retry does not inherit from the trial it repeats: that run's own outcome.
_RUN_ATTRS = ("reason", "worker", "run_dir", "steps", "wall_s")


def requeue(study: optuna.Study, trial: FrozenTrial, max_retry: int) -> bool:
    """Queues a failed trial again with the same parameters (system attrs `failed_trial`, the first trial of the
    chain, and `retry_history`, as Optuna's own retry callback records them); False after `max_retry` retries."""
    history = [*trial.system_attrs.get("retry_history", ()), trial.number]
    if len(history) > max_retry:
        log.warning(
            "trial %d: not retried again (%d retries, --max-retry %d)", trial.number, len(history) - 1, max_retry
        )
        return False
    system_attrs = {**trial.system_attrs, "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                    "retry_history": history}  # fmt: skip
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _RUN_ATTRS}
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=trial.params,
                                        distributions=trial.distributions, user_attrs=user_attrs,
                                        system_attrs=system_attrs))  # fmt: skip
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
