"""Latency measurement: warm-up, timed runs, statistics, and the machine they were measured on.

The statistics over the measured durations live in :mod:`edgecnn.stats` (pure functions);
:func:`time_calls` is the thin timing wrapper around a :class:`edgecnn.runtime.Classifier`, and
:func:`environment` describes the machine from ``/proc``, ``/sys`` and ``vcgencmd`` (each read is optional).

Imports only numpy and the standard library (never TensorFlow).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.config import DEFAULT_BENCH_RUNS as DEFAULT_RUNS
from edgecnn.config import DEFAULT_BENCH_SEED as DEFAULT_SEED
from edgecnn.config import DEFAULT_BENCH_WARMUP as DEFAULT_WARMUP
from edgecnn.errors import EdgecnnError
from edgecnn.config import LoopOptions
from edgecnn.loop import run_loop
from edgecnn.modelinfo import quantization_kind
from edgecnn.sources import open_source
from edgecnn.preprocess import read_image
from edgecnn.runtime import Classifier
from edgecnn.stats import latency_stats, throughput

#: Kinds :func:`int8_not_faster` compares with float32: graphs that compute in integers.
INTEGER_KINDS = ("int8", "uint8", "int16x8")

# Bits of ``vcgencmd get_throttled`` (Raspberry Pi documentation, "vcgencmd" -> get_throttled).
THROTTLE_BITS = {
    0: "under-voltage detected",
    1: "arm frequency capped",
    2: "currently throttled",
    3: "soft temperature limit active",
    16: "under-voltage has occurred",
    17: "arm frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


# ----------------------------------------------------------------------------------------------- rows
def ratios(rows: list[dict], key: str = "p50") -> list[float]:
    """Each row's ``latency_ms[key]`` divided by the first row's (1.0 for the first; > 1 means slower)."""
    if not rows:
        return []
    base = rows[0]["latency_ms"][key]
    return [r["latency_ms"][key] / base if base > 0 else float("nan") for r in rows]


def int8_not_faster(rows: list[dict]) -> list[str]:
    """Warnings for every integer row (kind in :data:`INTEGER_KINDS`) that is not faster (p50) than a float32 row
    with the same thread count.

    Rows carry ``"kind"`` (:func:`model_kind`) and ``"threads"``.
    Returns one message per (integer, float32) pair; an empty list when integer wins everywhere or a kind is missing.
    """
    out = []
    for a in rows:
        if a.get("kind") not in INTEGER_KINDS:
            continue
        for b in rows:
            if b.get("kind") == "float32" and b["threads"] == a["threads"] and \
                    a["latency_ms"]["p50"] >= b["latency_ms"]["p50"]:
                out.append(f"{a['kind']} {a['model']} is not faster than float32 {b['model']} at {a['threads']} "
                           f"thread(s): "
                           f"p50 {a['latency_ms']['p50']:.3f} ms vs {b['latency_ms']['p50']:.3f} ms "
                           f"({a['latency_ms']['p50'] / b['latency_ms']['p50']:.2f}x). Integer speed depends on "
                           f"the CPU's integer kernels (XNNPACK); measure on the target device before choosing.")
    return out


# ----------------------------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Raw timings of one model at one thread count.

    Attributes:
        first_invoke_ms: the very first invoke after the interpreter was built (lazy initialisation shows here).
        warmup: untimed runs after the first one.
        durations_ms: (runs,) float64, one per timed run.
    """

    first_invoke_ms: float
    warmup: int
    durations_ms: np.ndarray = field(repr=False)


def time_calls(fn, runs: int, warmup: int, progress=None, clock=time.perf_counter_ns) -> Timing:
    """Time ``fn()``: one first call, ``warmup`` untimed calls, then ``runs`` timed calls.

    Each timed call is bracketed by two ``clock()`` reads (nanoseconds), nothing else, so the measurement adds only
    the clock reads and the loop to each duration.

    Args:
        fn: the work, called with no arguments.
        runs: timed calls, >= 1. warmup: >= 0.
        progress: optional callable(n) told about each finished timed call (e.g. ``tqdm.update``).
        clock: integer nanosecond clock (injectable for tests).
    Returns:
        :class:`Timing` with durations in ms.
    Raises:
        ValueError: runs < 1 or warmup < 0.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs is {runs} and warmup is {warmup}, expected runs >= 1 and warmup >= 0")
    t0 = clock()
    fn()
    first = (clock() - t0) / 1e6
    for _ in range(warmup):
        fn()
    out = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        t0 = clock()
        fn()
        out[i] = clock() - t0
        if progress is not None:
            progress(1)
    return Timing(first, warmup, out / 1e6)


def random_tensor(classifier, seed: int = DEFAULT_SEED) -> np.ndarray:
    """A seeded random input of the model's shape and dtype: uniform random pixels (0..255) of the model's size,
    turned into the input tensor by the model's own preprocessing (so float inputs get a realistic range). A float
    input whose normalisation is unknown gets uniform values in [-1, 1], an int16 one uniform int16 values (latency
    does not depend on them)."""
    pre = classifier.preprocessing
    rng = np.random.default_rng(seed)
    if classifier.input.dtype == np.float32 and pre.mean is None:
        return rng.uniform(-1.0, 1.0, classifier.input.shape).astype(np.float32)
    if classifier.input.dtype == np.int16 and pre.mean is None:
        return rng.integers(-32768, 32768, classifier.input.shape).astype(np.int16)
    pixels = rng.integers(0, 256, (pre.height, pre.width, pre.channels), dtype=np.uint8)
    return classifier.tensor_from_pixels(pixels)


def model_kind(classifier) -> str:
    """The model's quantization kind (:func:`edgecnn.modelinfo.quantization_kind`: int8, uint8, int16x8,
    float16 weights, dynamic-range, int8 with float ops, float32), named from its tensors."""
    return quantization_kind(classifier.interpreter)


def bench_row(classifier, timing: Timing, env: dict | None = None) -> dict:
    """One JSON-ready result row.

    Keys: model, kind, size_bytes, input_dtype, output_dtype, backend, backend_version, kernels ("optimized", or
    "reference" where the optimized ones crash on this model: ``Classifier.kernel_note``), threads, runs, warmup,
    first_invoke_ms, latency_ms {p50, p90, p99, mean, std, min, max}, throughput_per_s, environment.
    """
    stats = latency_stats(timing.durations_ms)
    return {
        "model": str(classifier.path),
        "kind": model_kind(classifier),
        "size_bytes": classifier.size_bytes,
        "input_dtype": classifier.input.dtype.name,
        "output_dtype": classifier.output.dtype.name,
        "backend": classifier.backend.name,
        "backend_version": classifier.backend.version,
        "kernels": classifier.kernels,
        "threads": classifier.threads,
        "runs": int(timing.durations_ms.size),
        "warmup": timing.warmup,
        "first_invoke_ms": timing.first_invoke_ms,
        "latency_ms": stats,
        "throughput_per_s": throughput(stats["mean"]),
        "environment": env if env is not None else environment(),
    }


def bench_classifier(classifier, tensor: np.ndarray, runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
                     progress=None) -> Timing:
    """Time ``classifier.invoke(tensor)`` (set_tensor + invoke + read the output, what every caller pays)."""
    return time_calls(lambda: classifier.invoke(tensor), runs, warmup, progress)


# ----------------------------------------------------------------------------------------------- environment
def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def parse_cpuinfo(text: str) -> str | None:
    """CPU model from ``/proc/cpuinfo`` text: ``model name`` (x86, most ARM kernels), else ``Hardware``/``Model``,
    else ``CPU part`` as hex (ARM). None when nothing is found."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip().lower(), v.strip())
    for k in ("model name", "hardware", "model", "cpu model"):
        if fields.get(k):
            return fields[k]
    if fields.get("cpu part"):
        return f"ARM CPU part {fields['cpu part']}"
    return None


def parse_throttled(text: str) -> dict | None:
    """Parse ``vcgencmd get_throttled`` output (``throttled=0x50005``).

    Returns:
        ``{"raw": "0x50005", "flags": [names of the set bits, see THROTTLE_BITS]}``, or None if unparseable.
    """
    m = re.search(r"throttled=(0x[0-9a-fA-F]+)", text or "")
    if not m:
        return None
    value = int(m.group(1), 16)
    return {"raw": m.group(1), "flags": [name for bit, name in THROTTLE_BITS.items() if value >> bit & 1]}


def _vcgencmd(*args: str) -> str | None:
    exe = shutil.which("vcgencmd")
    if not exe:
        return None
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _os_name() -> str:
    text = _read("/etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return m.group(1) if m else platform.platform()


def environment() -> dict:
    """Fingerprint of the machine a measurement ran on.

    Keys (values None when unavailable): cpu_model, cores (logical CPUs), cores_available (this process's
    affinity), machine (``platform.machine()``), os, kernel, python, board (``/proc/device-tree/model``, e.g.
    "Raspberry Pi 4 Model B Rev 1.4"), cpu_governor (``/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor``),
    cpu_max_mhz, temperature_c (``/sys/class/thermal/thermal_zone0/temp`` in millidegrees, or ``vcgencmd
    measure_temp``), throttled (:func:`parse_throttled` of ``vcgencmd get_throttled``), load_1m (1-minute load
    average: runnable processes competing for the cores while measuring).
    """
    try:
        avail = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        avail = os.cpu_count()
    temp = None
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    if raw and raw.lstrip("-").isdigit():
        temp = int(raw) / 1000.0
    throttled = None
    if shutil.which("vcgencmd"):
        throttled = parse_throttled(_vcgencmd("get_throttled") or "")
        if temp is None:
            m = re.search(r"temp=([\d.]+)", _vcgencmd("measure_temp") or "")
            temp = float(m.group(1)) if m else None
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    return {
        "cpu_model": parse_cpuinfo(_read("/proc/cpuinfo") or "") or platform.processor() or None,
        "cores": os.cpu_count(),
        "cores_available": avail,
        "machine": platform.machine(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "board": _read("/proc/device-tree/model"),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cpu_max_mhz": int(max_khz) / 1000.0 if max_khz and max_khz.isdigit() else None,
        "temperature_c": temp,
        "throttled": throttled,
        "load_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def describe_environment(env: dict) -> str:
    """One line for humans: CPU, cores, board, OS, Python, and governor/temperature/throttling when known."""
    parts = [f"{env.get('cpu_model') or 'unknown CPU'} ({env.get('machine')}), "
             f"{env.get('cores_available')}/{env.get('cores')} cores"]
    if env.get("board"):
        parts.append(env["board"])
    parts.append(f"{env.get('os')}, Python {env.get('python')}")
    if env.get("cpu_governor"):
        parts.append(f"governor {env['cpu_governor']}")
    if env.get("temperature_c") is not None:
        parts.append(f"{env['temperature_c']:.1f} C")
    if env.get("throttled"):
        parts.append("throttling: " + (", ".join(env["throttled"]["flags"]) or "none"))
    if env.get("load_1m") is not None:
        parts.append(f"load average {env['load_1m']:.2f}")
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------- runs
def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    # disable=None: tqdm switches itself off when stderr is not a terminal (scripts, CI, --json pipes).
    return tqdm(total=total, desc=desc, unit="run", leave=False, disable=None if enabled else True)


def pipeline_row(classifier, source_spec: str, runs: int, warmup: int, env: dict | None = None,
                 progress: bool = True) -> tuple[dict, np.ndarray]:
    """Time the full camera pipeline (:func:`edgecnn.loop.run_loop`, headless) on a video or image folder.

    The interpreter gets one first invoke and ``warmup`` untimed invokes on seeded random input, then the loop
    processes up to ``runs`` frames of ``source_spec``. ``latency_ms`` is over per-frame totals (capture to the
    end of postprocess); ``stages_ms`` has each stage.

    Returns:
        (row, per-frame totals in ms).
    Raises:
        edgecnn.errors.SourceError: the source cannot be opened; EdgecnnError: it gives no frames.
    """
    tensor = random_tensor(classifier)
    t = time_calls(lambda: classifier.invoke(tensor), 1, warmup)
    source = open_source(source_spec)
    try:
        with _progress_bar(runs, f"{classifier.path.name} pipeline", progress) as bar:
            res = run_loop(source, classifier, LoopOptions(max_frames=runs, latency_window=runs),
                           on_frame=lambda _: bar.update(1))
    finally:
        source.close()
    if res.frames == 0:
        raise EdgecnnError(res.message or f"{source_spec}: no frames to time")
    summary = res.summary(classifier, source.description)
    totals = res.stages_ms["total"].values()  # every frame: the latency window is runs frames
    row = bench_row(classifier, Timing(t.first_invoke_ms, warmup, totals), env)
    row.update(pipeline=source_spec, fps=summary["fps"], dropped=summary["dropped"],
               stages_ms=summary["stages_ms"], frame_age_ms=summary["frame_age_ms"])
    return row, totals


def run(models: list[str], thread_counts: list[int | None], make_options, runs: int = DEFAULT_RUNS,
        warmup: int = DEFAULT_WARMUP, image: str | None = None, pipeline: str | None = None,
        seed: int = DEFAULT_SEED, progress: bool = True,
        failures: list[tuple[str, str]] | None = None) -> list[tuple[dict, np.ndarray]]:
    """Benchmark every model at every thread count, in that order (models outer, threads inner).

    With ``failures`` (a list), a model that cannot be loaded or run is skipped, its ``(path, message)`` appended
    there, and the other models still measured; without it the first error is raised.

    Args:
        models: .tflite paths.
        thread_counts: interpreter threads per row; None means :func:`edgecnn.config.default_threads`.
        make_options: callable(threads) -> :class:`edgecnn.config.RuntimeOptions`.
        image: time on this image (read and preprocessed once) instead of seeded random input.
        pipeline: time the camera pipeline on this video/folder instead (:func:`pipeline_row`).
        progress: show tqdm bars (only on a terminal).
    Returns:
        [(row, durations in ms), ...]; rows as :func:`bench_row` (plus pipeline keys).
    Raises:
        ModelError, ImageError, BackendError, SourceError: bad model, image, interpreter or source.
    """
    env = environment()
    pixels = None
    if image is not None:
        pixels = read_image(image)
    out = []
    for path in models:
        try:
            for threads in thread_counts:
                out.append(_measure(path, make_options(threads), runs, warmup, pixels, image, pipeline, seed, env,
                                    progress))
        except EdgecnnError as e:
            if failures is None:
                raise
            failures.append((str(path), str(e)))
    return out


def _measure(path, options, runs, warmup, pixels, image, pipeline, seed, env, progress) -> tuple[dict, np.ndarray]:
    """One row of :func:`run`: one model at one thread count."""
    # Random input needs no normalisation; a real image or the camera pipeline does.
    clf = Classifier(path, options, require_normalisation=image is not None or bool(pipeline))
    if pipeline is not None:
        return pipeline_row(clf, pipeline, runs, warmup, env, progress)
    tensor = clf.preprocess(pixels) if pixels is not None else random_tensor(clf, seed)
    with _progress_bar(runs, f"{Path(path).name} x{clf.threads}", progress) as bar:
        timing = bench_classifier(clf, tensor, runs, warmup, bar.update)
    row = bench_row(clf, timing, env)
    row["input"] = str(image) if image is not None else f"random (seed {seed})"
    return row, timing.durations_ms
