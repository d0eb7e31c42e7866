"""Latency statistics: percentiles (p50/p90/p99), mean, spread and throughput over durations in milliseconds.

Pure functions over numpy arrays, shared by ``edgecnn bench`` (:mod:`edgecnn.bench`) and the camera loop's summary
(:mod:`edgecnn.loop`). Imports only numpy.
"""

from __future__ import annotations

import numpy as np

#: Percentiles reported, in percent.
PERCENTILES = (50, 90, 99)
#: Statistic names of :func:`latency_stats`, in report order.
STAT_KEYS = ("p50", "p90", "p99", "mean", "std", "min", "max")


def latency_stats(durations_ms) -> dict[str, float]:
    """Summary statistics of durations.

    Percentiles use numpy's default method (``linear``: linear interpolation between the closest ranks, Hyndman &
    Fan type 7, the same as Excel's PERCENTILE.INC); ``std`` is the population standard deviation (ddof=0).

    Args:
        durations_ms: sequence of durations in ms (at least one).
    Returns:
        ``{"p50", "p90", "p99", "mean", "std", "min", "max"}`` in ms (Python floats).
    Raises:
        ValueError: no durations, or a negative / non-finite one.
    """
    d = np.asarray(durations_ms, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError("no durations to summarise (expected at least one)")
    if not np.all(np.isfinite(d)) or d.min() < 0:
        raise ValueError("durations must be finite and >= 0 ms")
    p = np.percentile(d, PERCENTILES)
    out = {f"p{q}": float(v) for q, v in zip(PERCENTILES, p)}
    out.update(mean=float(d.mean()), std=float(d.std()), min=float(d.min()), max=float(d.max()))
    return out


def throughput(mean_ms: float) -> float:
    """Runs per second sustained at a mean latency of ``mean_ms`` (one run at a time): ``1000 / mean_ms``."""
    return 1000.0 / mean_ms if mean_ms > 0 else float("inf")
