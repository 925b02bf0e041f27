"""run.retain_host_memory: a step's temporaries are faulted in once, not once per step.

Each case runs in a fresh interpreter: the settings are process-wide and must precede JAX's CPU client. The
expectation is independent of the code: a computation whose XLA temporaries take `temp_bytes` touches
temp_bytes / page size fresh pages per execution when its buffer is mmap'd anew, and none when it is reused.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the setting is glibc's"
)

SCRIPT = """
import json, resource, sys
retained = None
if sys.argv[1] == "retain":
    from taco_jax.train.host_memory import retain_host_memory
    retained = retain_host_memory()
import jax
import jax.numpy as jnp

def f(x):
    ys = jax.lax.scan(lambda c, _: (c * 0.5 + 1.0, jnp.sin(c)), x, None, length=64)[1]  # [64, N] temporary
    return ys @ x

x = jnp.ones((256 * 1024,), jnp.float32)
step = jax.jit(f).lower(x).compile()
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    jax.block_until_ready(step(x))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"retained": retained, "temp_bytes": step.memory_analysis().temp_size_in_bytes,
                  "faults": faults}))
"""


def _python(script: str, *args: str) -> str:
    """stdout of `script` run by a fresh interpreter on the CPU backend (which must exit 0)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _run(mode: str) -> dict:
    return json.loads(_python(SCRIPT, mode).strip().splitlines()[-1])


def test_retained_temporaries_are_not_faulted_in_again():
    page = resource.getpagesize()
    plain, retained = _run("plain"), _run("retain")
    assert retained["retained"] is True
    pages = plain["temp_bytes"] / page
    assert plain["temp_bytes"] >= 64 * 2**20  # above glibc's largest mmap threshold (32 MB): the case that matters
    # Without the setting every execution maps its temporaries afresh ...
    assert min(plain["faults"]) >= 0.9 * pages, str(plain)
    # ... with it, only the first few do: XLA releases a temporary buffer a moment after the execution ends,
    # so the next calls may find it still in use and take another block (seen: up to 3 more), but once the
    # heap holds enough blocks they are reused without a single new page.
    faults = retained["faults"]
    assert faults[0] >= 0.9 * pages, str(faults)
    assert sum(faults) <= 5 * pages, str(faults)
    assert sum(f <= 0.05 * pages for f in faults[-7:]) >= 5, str(faults)


def test_not_applied_once_a_backend_exists():
    script = (
        "import jax; jax.devices()\n"
        "from taco_jax.train.host_memory import retain_host_memory\n"
        'print(retain_host_memory(), jax.config.values["jax_cpu_enable_async_dispatch"])'
    )
    assert _python(script).split() == ["False", "True"]
