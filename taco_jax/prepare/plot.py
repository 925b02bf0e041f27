"""The duration histogram of a prepared corpus (`durations.png`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from taco_jax.files import atomic_output


def plot_durations(
    path: str | os.PathLike[str],
    kept: Sequence[float],
    dropped: Sequence[float],
    min_seconds: float,
    max_seconds: float,
) -> None:
    """Write a PNG histogram of utterance durations (seconds): `kept` utterances and the recordings `dropped`
    after decoding, stacked, with the --min-seconds / --max-seconds limits marked. Atomic.

    Uses an Agg canvas of its own (not pyplot), so the process's matplotlib backend is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.0, 3.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    longest = max([*kept, *dropped, max_seconds, 1.0])
    bins = np.linspace(0.0, longest * 1.02, 41)
    ax.hist(
        [np.asarray(kept, float), np.asarray(dropped, float)],
        bins=bins,
        stacked=True,
        color=["tab:blue", "tab:red"],
        label=[f"kept ({len(kept)})", f"dropped after decoding ({len(dropped)})"],
    )
    for limit, name in ((min_seconds, "--min-seconds"), (max_seconds, "--max-seconds")):
        ax.axvline(limit, color="k", linestyle="--", linewidth=1)
        ax.annotate(
            name, (limit, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=8
        )
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("utterances")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
