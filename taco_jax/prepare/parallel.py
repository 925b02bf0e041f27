"""Running `process_item` over many tasks: in a process pool, with a bounded queue and a progress bar."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from tqdm.auto import tqdm

from taco_jax.prepare.items import ItemResult
from taco_jax.prepare.process import Settings, Task, init_worker, process_item, run_task

_IN_FLIGHT_PER_WORKER = 4  # queued tasks per worker: keeps workers busy without a future per corpus item


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not "fork": the parent may hold threads (JAX's, imported through taco_jax.data), and forking a threaded
    # process can deadlock the child. The fork server starts once per parent process, imports the worker module
    # once, and forks every worker from that clean process, so a worker starts in milliseconds.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["taco_jax.prepare.process"])
        return ctx
    return multiprocessing.get_context("spawn")


def process_all(
    tasks: Sequence[Task],
    settings: Settings,
    on_result: Callable[[Task, ItemResult], None],
    workers: int,
    progress: bool = True,
) -> None:
    """Process every task, calling `on_result(task, result)` in this process as each finishes (in completion
    order). `workers` <= 1 processes in this process, without a pool. An exception from a task (a bug, a full
    disk) cancels the tasks not yet started and is raised here."""
    with tqdm(total=len(tasks), desc="preparing", unit="item", disable=not progress, leave=False) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                on_result(task, process_item(task, settings))
                bar.update(1)
            return
        _pool_map(tasks, settings, on_result, workers, bar)


def _pool_map(
    tasks: Sequence[Task], settings: Settings, on_result: Callable[[Task, ItemResult], None], workers: int, bar: tqdm
) -> None:
    ctx = _pool_context()
    workers = min(workers, len(tasks))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(settings,)) as pool:
        queue = iter(tasks)
        pending: set[Future] = set()
        try:
            while True:
                for task in queue:
                    pending.add(pool.submit(run_task, task))
                    if len(pending) >= workers * _IN_FLIGHT_PER_WORKER:
                        break
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(*future.result())
                    bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
