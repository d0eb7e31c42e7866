"""Results -> text tables, JSON, CSV and latency-histogram PNGs.

Pure formatting over the dicts made by :mod:`edgecnn.bench` (bench rows) and :mod:`edgecnn.loop` (camera
summaries). matplotlib is imported only by :func:`save_histogram`, and may be absent on a device.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from edgecnn.errors import EdgecnnError
from edgecnn.outputs import pending_path

#: Statistics shown in the bench table, in order.
TABLE_STATS = ("p50", "p90", "p99", "mean", "std", "min", "max")
#: Histogram bins per row.
HISTOGRAM_BINS = 50


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Align columns: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for r in [header, *rows]:
        out.append("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- bench
def bench_table(rows: list[dict]) -> str:
    """Bench rows as a text table: model, kind, in/out dtypes, threads, size, first invoke, p50..max (ms),
    inferences per second, and p50 relative to the first row (``1.00x``; 2.00x = twice as slow). Pipeline rows
    (``"pipeline"`` key) show per-frame totals."""
    if not rows:
        return "(no results)"
    base = rows[0]["latency_ms"]["p50"]
    header = ["model", "kind", "in/out", "thr", "size", "first", *TABLE_STATS, "per s", "p50 vs 1st"]
    body = []
    for r in rows:
        lat = r["latency_ms"]
        first = r.get("first_invoke_ms")
        body.append([
            r["model"] + (f" [pipeline {r['pipeline']}]" if r.get("pipeline") else ""),
            r.get("kind", "?"), f"{r.get('input_dtype', '?')}/{r.get('output_dtype', '?')}", str(r["threads"]),
            _fmt_bytes(r["size_bytes"]), f"{first:.3f}" if first is not None else "-",
            *(f"{lat[k]:.3f}" for k in TABLE_STATS), f"{r['throughput_per_s']:.1f}",
            f"{lat['p50'] / base:.2f}x" if base > 0 else "-",
        ])
    return _table(header, body) + "\n(latencies in ms; 'first' is the first invoke, before warm-up)"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = ";".join(map(str, v))
        else:
            out[key] = v
    return out


def bench_csv(rows: list[dict]) -> str:
    """Bench rows as CSV with a header; nested keys flattened with dots (``latency_ms.p50``,
    ``environment.cpu_model``), lists joined with ``;``."""
    flat = [_flatten(r) for r in rows]
    fields = list(dict.fromkeys(k for f in flat for k in f))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def bench_json(rows: list[dict]) -> str:
    """Bench rows as one JSON array."""
    return json.dumps(rows, indent=1)


# ----------------------------------------------------------------------------------------------- camera
def camera_summary_text(s: dict) -> str:
    """A camera summary (:meth:`edgecnn.loop.LoopResult.summary`) as text, stage statistics in ms."""
    lines = [f"{s['frames']} frames in {s['wall_s']:.2f} s: wall FPS {s['wall_fps']:.1f} (frames / elapsed time), "
             f"processing FPS {s['processing_fps']:.1f} (frames / time spent on them, failed reads excluded)",
             f"{s['dropped']} dropped, {s['failed_reads']} failed reads; ended: {s['ended']}",
             f"model {s['model']} ({s['backend']}, {s['threads']} thread{'s' if s['threads'] != 1 else ''}), "
             f"source {s['source']}"]
    keys = ("p50", "p90", "p99", "mean", "max")
    body = []
    for name, v in [*s["stages_ms"].items(), ("frame age", s["frame_age_ms"])]:
        body.append([name, *(f"{v[k]:.3f}" if v else "-" for k in keys)])
    if s.get("percentile_frames") is not None and s["percentile_frames"] < s["frames"]:
        lines.append(f"p50/p90/p99: the last {s['percentile_frames']:,} frames (latency window); mean and max: all "
                     f"{s['frames']:,} frames")
    service = s.get("service") or {}
    if service.get("events"):
        last = service["last_event"]
        lines.append(f"{service['events']} events, the last: {last['label']} ({last['score']:.3f}) at frame "
                     f"{last['frame']}")
    if "exec" in service:
        lines.append("--exec: " + ", ".join(f"{v} {k}" for k, v in service["exec"].items()))
    return "\n".join(lines) + "\n" + _table(["ms", *keys], body)


# ----------------------------------------------------------------------------------------------- plots
def save_histogram(series: list[tuple[str, "object"]], path: str | Path, title: str = "Latency") -> None:
    """Write a PNG with one latency histogram per series (overlaid, shared bins).

    Args:
        series: [(label, durations in ms), ...].
        path: output .png; written through :func:`edgecnn.outputs.pending_path` (complete or not at all).
    Raises:
        EdgecnnError: matplotlib is not installed (``pip install edgecnn[plot]``).
    """
    try:
        import matplotlib
    except ImportError:
        raise EdgecnnError("the latency histogram needs matplotlib: pip install matplotlib "
                           "(or edgecnn[plot])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    data = [(label, np.asarray(d, dtype=float)) for label, d in series]
    # Range: every row's bulk (up to its own p99); slower outliers are counted in the last bin and in the legend,
    # so a single 30 ms hiccup does not squeeze 0.1 ms latencies into one bar.
    lo = min(d.min() for _, d in data)
    hi = max(np.percentile(d, 99) for _, d in data)
    hi = hi * 1.05 if hi > lo else lo + 1e-3
    bins = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, d in data:
        above = int((d > hi).sum())
        ax.hist(np.clip(d, lo, hi), bins=bins, alpha=0.55,
                label=f"{label}: p50 {np.percentile(d, 50):.3f} ms" + (f", {above} above {hi:.3f} ms" if above else ""))
    ax.set_xlabel("latency, ms (values beyond the range are counted in the last bin)")
    ax.set_ylabel("runs")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with pending_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
