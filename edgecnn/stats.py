"""Latency statistics: percentiles (p50/p90/p99), mean, spread and throughput over durations in milliseconds.

Pure functions over numpy arrays, shared by ``edgecnn bench`` (:mod:`edgecnn.bench`) and the camera loop's summary
(:mod:`edgecnn.loop`), and :class:`RecentSamples`, the bounded store of a long run's durations. Imports only numpy
and the standard library.
"""

from __future__ import annotations

from array import array

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


class RecentSamples:
    """The durations (ms) of a run that may last for days, in bounded memory: exact count, sum, min and max over
    every sample, and the most recent ``window`` samples (a ring buffer, 8 bytes each) for percentiles.

    One thread appends; another may :meth:`copy` at any time (each read is a single atomic step under the GIL; a
    copy taken during an append may be one sample behind in some fields).

    Args:
        window: samples kept for percentiles (>= 1).
    Raises:
        ValueError: ``window`` < 1.
    """

    def __init__(self, window: int):
        if window < 1:
            raise ValueError(f"window is {window}, expected >= 1 samples")
        self.window = int(window)
        self.count = 0  # every sample appended
        self.total = 0.0  # their sum, ms
        self.min = float("inf")
        self.max = float("-inf")
        self._buf = array("d")

    def append(self, value_ms: float) -> None:
        """Add one duration (ms); once ``window`` are held, it replaces the oldest."""
        if self.count < self.window:
            self._buf.append(value_ms)
        else:
            self._buf[self.count % self.window] = value_ms
        self.total += value_ms
        self.min = min(self.min, value_ms)
        self.max = max(self.max, value_ms)
        self.count += 1

    def __len__(self) -> int:
        """Samples held (at most ``window``)."""
        return len(self._buf)

    @property
    def last(self) -> float | None:
        """The newest duration (ms), or None before the first."""
        return self._buf[(self.count - 1) % self.window] if self.count else None

    @property
    def windowed(self) -> bool:
        """True when older samples were dropped (percentiles cover only the last ``window``)."""
        return self.count > self.window

    def values(self) -> np.ndarray:
        """The samples held, oldest first: (min(count, window),) float64, ms."""
        buf = np.frombuffer(self._buf[:], dtype=np.float64) if len(self._buf) else np.zeros(0)
        i = self.count % self.window if self.windowed else 0
        return np.concatenate([buf[i:], buf[:i]])

    def copy(self, count: int | None = None) -> "RecentSamples":
        """An independent copy; with ``count`` (<= :attr:`count`) cut to the first ``count`` samples, exactly while
        no sample was dropped yet (after that the whole window is kept, with ``count`` as its count)."""
        out = RecentSamples(self.window)
        buf, n = self._buf[:], self.count if count is None else min(count, self.count)
        if n <= self.window and n <= len(buf):
            out._buf = buf[:n]
            out.total = float(sum(out._buf))
            out.min, out.max = (min(out._buf), max(out._buf)) if n else (out.min, out.max)
        else:
            out._buf, out.total, out.min, out.max = buf, self.total, self.min, self.max
        out.count = n
        return out

    def stats(self) -> dict[str, float]:
        """:func:`latency_stats` of the run: p50/p90/p99 and std over the samples held (the last ``window``), mean,
        min and max over every sample.

        Raises:
            ValueError: no samples.
        """
        s = latency_stats(self.values())
        s.update(mean=self.total / self.count, min=self.min, max=self.max)
        return s
