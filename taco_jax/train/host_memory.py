"""Keep the train step's host working memory resident between steps (CPU backend, glibc).

Why. XLA:CPU allocates each execution's temporaries as one block (554 MB for NVIDIA's model at B=8, T=250:
the decoder's saved activations) with malloc and frees it when the execution ends. glibc serves any block
above its mmap threshold (32 MB at most) with a fresh `mmap` and returns it with `munmap`, so every step
page-faults its whole working set in again: about 135,000 faults and 0.3-0.4 s of kernel time in a 2.2 s
step. Where the machine is a VM that hands free guest pages back to its host (virtio-balloon free-page
reporting, as on this project's machines), pages that stay free for a few seconds are discarded and cost far
more to fault back in: a step that follows 8 s of other work (the PyTorch step of
benchmarks/compare_torch.py) spent 1.2-1.8 s in the kernel instead of 0.3-0.4 s (benchmarks/RESULTS.md).

What. `retain_host_memory()` turns glibc's mmap path off (`M_MMAP_MAX` = 0) and its heap trimming off
(`M_TRIM_THRESHOLD` at its maximum), so a freed block stays in the heap and the next step reuses the same,
already-mapped pages; and it makes the CPU client run each computation on the calling thread
(`jax_cpu_enable_async_dispatch` off), because glibc can keep a block larger than a thread heap (64 MB) only
in the main thread's heap: blocks allocated by another thread are mmap'd whatever the settings. The cost is
the usual one of a caching allocator: the process's resident memory stays at its peak. Config key:
`run.retain_host_memory` (default on). Measured on this project's 2-core VM (benchmarks/RESULTS.md, "Page
faults and the alternation penalty"): faults per step ~135,000 -> 0-16, kernel time 0.33 s -> 0.04 s; a step
that follows the PyTorch step in compare_torch.py 2.3-3.3 s -> 1.9-2.2 s; a step that follows a step, within
this machine's noise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

import jax

log = logging.getLogger("taco_jax.train")

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_applied = False


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (the settings below are glibc's), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def retain_host_memory(enabled: bool = True) -> bool:
    """Apply the settings above to this process when `enabled` (`run.retain_host_memory`); returns whether they
    are in effect.

    Call before the first JAX computation: the dispatch setting is read when JAX creates its CPU client. Not
    applied (with a log line saying why) on a C library other than glibc or when a backend already exists.
    Other backends (GPU, TPU) are unaffected: their device memory has its own caching allocator.
    """
    global _applied
    if not enabled or _applied:
        return _applied  # settings once made stay for the process's life
    libc = _glibc()
    if libc is None:
        log.info("run.retain_host_memory: not applied (the C library is not glibc: %s)", platform.libc_ver())
        return False
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        log.info("run.retain_host_memory: not applied (JAX's backends were created before the setting)")
        return False
    for param, value, name in ((_M_MMAP_MAX, 0, "M_MMAP_MAX"), (_M_TRIM_THRESHOLD, _INT_MAX, "M_TRIM_THRESHOLD")):
        if libc.mallopt(param, value) != 1:
            raise RuntimeError(f"run.retain_host_memory: glibc's mallopt({name}, {value}) failed")
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    _applied = True
    return True
