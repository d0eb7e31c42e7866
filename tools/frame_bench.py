"""Per-frame cost on real-size models, side by side: edgecnn vs a bare LiteRT loop vs MediaPipe Tasks.

Run through ``python tools/benchmark.py --per-frame`` (step 8 of the full run). For each model, the same in-memory
640x480 BGR frames made from real photos (the flowers5 test split by default, as ``tools/make_video.py make
--photos`` makes them) go through three contenders, one interpreter thread each, the whole process pinned to one
CPU (MediaPipe's Python API has no thread setting, so pinning is what makes the comparison 1 thread for all):

* **edgecnn**: what ``edgecnn camera`` does per frame: ``Classifier.preprocess`` (centre crop, the shared resize,
  BGR -> RGB, normalise + quantize by the model's metadata) + ``invoke`` + ``postprocess`` (dequantize, top-3);
* **bare loop**: ``cv2.resize`` of the whole frame to the input size with INTER_LINEAR (a stretch) + the cast to
  the input dtype (uint8 as is, int8 as pixel - 128) + ``set_tensor`` + ``invoke`` + ``argmax`` of the output:
  the cheapest honest loop (no crop, no colour order, no normalisation);
* **MediaPipe**: ``mediapipe.tasks.python.vision.ImageClassifier`` in VIDEO mode (max 3 results), frames converted
  BGR -> RGB as Google's Raspberry Pi classification example does; only when ``mediapipe`` is installed
  (``pip install -e ".[bench]"``).

Rounds interleave the contenders (the order rotates each round) so machine load hits all of them; every number
is the median over rounds of the per-round p50 per frame, and the ratios are of those medians. Top-1 on the
frames' labels is reported for each contender (for a ``*_timing.tflite`` model, built with a random backbone,
it means nothing). A separate pass times each stage of the edgecnn and bare loops, to show where the difference
between them goes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edgecnn.config import RuntimeOptions  # noqa: E402
from edgecnn.preprocess import convert_channels, resize  # noqa: E402
from edgecnn.runtime import Classifier  # noqa: E402

from shared_data import FLOWERS5  # noqa: E402  (tools/ is on sys.path)

PHOTOS = FLOWERS5
#: Where the default photo models are built once (build/ is ignored by git).
MODEL_CACHE = ROOT / "build" / "photo-models"
#: (file name, input size, dtype, alpha) of the default models, built by tools/build_photo_model.py.
#: MediaPipe's ImageClassifier takes uint8 or float32 inputs only, so the 96-px model is also built as uint8 to
#: compare the small-model regime with MediaPipe. Only alpha 0.35 ImageNet weights are at hand: the alpha 1.0
#: model (the size of the issue's MobileNet v2 1.0) has a random backbone and is there for its timing.
DEFAULT_MODELS = (("mnv2_0.35_224_uint8.tflite", 224, "uint8", 0.35),
                  ("mnv2_0.35_96_int8.tflite", 96, "int8", 0.35),
                  ("mnv2_0.35_96_uint8.tflite", 96, "uint8", 0.35),
                  ("mnv2_1.0_224_uint8_timing.tflite", 224, "uint8", 1.0))
WARMUP_FRAMES = 20
TOP_K = 3
#: Goals from the issue: edgecnn's preprocessing of a 640x480 frame for a 224x224x3 uint8 model with normalisation
#: metadata (ms, p50), and edgecnn's per-frame p50 over the bare loop's and over MediaPipe's.
TARGETS = {"preprocess_224_uint8_ms": 0.5, "over_bare": 1.05, "over_mediapipe": 1.0}


def default_models(weights: Path | None = None, photos: Path = PHOTOS) -> list[Path]:
    """The default models, built into :data:`MODEL_CACHE` the first time (TensorFlow, a few minutes)."""
    out = []
    for name, size, dtype, alpha in DEFAULT_MODELS:
        path = MODEL_CACHE / name
        if not path.is_file():
            print(f"building {path} once (tools/build_photo_model.py; needs edgecnn[train]) ...", file=sys.stderr)
            import build_photo_model as bpm

            imagenet = alpha == bpm.ALPHA
            bpm.build(size, dtype, path, (weights or bpm.WEIGHTS) if imagenet else None, photos, alpha)
        out.append(path)
    return out


def camera_frames(photos: Path, n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` 640x480 BGR frames of the test photos (class balanced, seeded; repeated when there are fewer) and
    their class indices."""
    from make_video import photo_frame, pick, test_photos

    from edgecnn.preprocess import read_image

    paths, labels, _ = test_photos(photos)
    chosen = pick(labels, min(n, len(paths)), seed)
    chosen = np.resize(chosen, n)
    cache = {int(i): photo_frame(read_image(paths[i])) for i in set(chosen.tolist())}
    return [cache[int(i)] for i in chosen], labels[chosen]


class Edgecnn:
    """edgecnn's per-frame path, as the camera loop runs it."""

    name = "edgecnn"

    def __init__(self, model: Path):
        self.clf = Classifier(model, RuntimeOptions(threads=1))
        self.preprocess_ms: list[float] = []

    def __call__(self, frame: np.ndarray) -> int:
        clf = self.clf
        t0 = time.perf_counter_ns()
        tensor = clf.preprocess(frame, "bgr")
        self.preprocess_ms.append((time.perf_counter_ns() - t0) / 1e6)
        top = clf.postprocess(clf.invoke(tensor), TOP_K, 0.0)
        return top[0].index

    def stages(self, frame: np.ndarray) -> dict[str, float]:
        """The same work as a call, each stage timed on its own (ns)."""
        clf, pre = self.clf, self.clf.preprocessing
        t = [time.perf_counter_ns()]
        small = resize(frame, pre.height, pre.width, pre.resize)
        t.append(time.perf_counter_ns())
        pixels = convert_channels(small, pre.channels, "bgr")
        t.append(time.perf_counter_ns())
        tensor = clf.tensor_from_pixels(pixels)
        t.append(time.perf_counter_ns())
        raw = clf.invoke(tensor)
        t.append(time.perf_counter_ns())
        clf.postprocess(raw, TOP_K, 0.0)
        t.append(time.perf_counter_ns())
        names = ("crop + resize", "BGR -> RGB", "normalise + quantize", "set_tensor + invoke", "postprocess")
        return dict(zip(names, np.diff(t)))

    def close(self) -> None:
        pass


class BareLoop:
    """INTER_LINEAR stretch of the whole frame + cast + set_tensor + invoke + argmax, on its own interpreter."""

    name = "bare loop"

    def __init__(self, model: Path):
        import cv2

        self.cv2 = cv2
        clf = Classifier(model, RuntimeOptions(threads=1))  # for the kernels edgecnn uses with this model
        it = clf.backend.interpreter_class(model_content=model.read_bytes(), num_threads=1,
                                           **clf.interpreter_options)
        it.allocate_tensors()
        d, o = it.get_input_details()[0], it.get_output_details()[0]
        self.it, self.idx, self.out = it, d["index"], o["index"]
        self.size = (int(d["shape"][2]), int(d["shape"][1]))
        self.int8 = np.dtype(d["dtype"]) == np.int8

    def __call__(self, frame: np.ndarray) -> int:
        x = self.cv2.resize(frame, self.size, interpolation=self.cv2.INTER_LINEAR)
        if self.int8:
            x = np.bitwise_xor(x, 128).view(np.int8)  # pixel - 128
        self.it.set_tensor(self.idx, x[None])
        self.it.invoke()
        return int(np.argmax(self.it.get_tensor(self.out)))

    def stages(self, frame: np.ndarray) -> dict[str, float]:
        """The same work as a call, each stage timed on its own (ns)."""
        t = [time.perf_counter_ns()]
        x = self.cv2.resize(frame, self.size, interpolation=self.cv2.INTER_LINEAR)
        t.append(time.perf_counter_ns())
        if self.int8:
            x = np.bitwise_xor(x, 128).view(np.int8)
        t.append(time.perf_counter_ns())
        self.it.set_tensor(self.idx, x[None])
        self.it.invoke()
        t.append(time.perf_counter_ns())
        int(np.argmax(self.it.get_tensor(self.out)))
        t.append(time.perf_counter_ns())
        return dict(zip(("resize (stretch)", "cast", "set_tensor + invoke", "argmax"), np.diff(t)))

    def close(self) -> None:
        pass


class MediaPipe:
    """MediaPipe Tasks ImageClassifier, VIDEO running mode."""

    name = "MediaPipe"

    def __init__(self, model: Path):
        import cv2
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self.cv2, self.mp = cv2, mp
        opts = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                             running_mode=vision.RunningMode.VIDEO, max_results=TOP_K)
        self.task = vision.ImageClassifier.create_from_options(opts)
        self.t_ms = 0

    def __call__(self, frame: np.ndarray) -> int:
        rgb = self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)
        self.t_ms += 33  # VIDEO mode wants increasing timestamps (ms)
        res = self.task.classify_for_video(self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=rgb), self.t_ms)
        cats = res.classifications[0].categories
        return cats[0].index if cats else -1

    def close(self) -> None:
        self.task.close()


def mediapipe_version() -> str | None:
    """The installed mediapipe's version, or None when it is not installed."""
    import importlib.metadata

    try:
        return importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        return None


def pin_to_one_cpu() -> int | None:
    """Pin this process (and the threads it starts from now on) to the first CPU it may use. Returns it."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def run_round(contender, frames: list[np.ndarray]) -> tuple[list[float], list[int]]:
    """Per-frame wall times (ms) and top-1 indices of one pass over the frames."""
    times, preds = [], []
    for f in frames:
        t0 = time.perf_counter_ns()
        preds.append(contender(f))
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times, preds


def stage_p50(contender, frames: list[np.ndarray], rounds: int) -> dict[str, float]:
    """p50 (ms) of each stage of a contender's per-frame work, over ``rounds`` passes of the frames."""
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for f in frames:
            for stage, ns in contender.stages(f).items():
                times.setdefault(stage, []).append(ns / 1e6)
    return {stage: statistics.median(v) for stage, v in times.items()}


def compare(model: Path, frames: list[np.ndarray], labels: np.ndarray, rounds: int) -> dict:
    """Interleaved rounds of every available contender on one model. Returns p50s, ratios and top-1s."""
    contenders = [Edgecnn(model), BareLoop(model)]
    skipped = {}
    if mediapipe_version():
        mp = None
        try:
            mp = MediaPipe(model)
            run_round(mp, frames[:1])
            contenders.append(mp)
        except (ValueError, RuntimeError) as e:  # e.g. an int8 input: MediaPipe takes uint8/float32 only
            if mp is not None:
                mp.close()
            skipped["MediaPipe"] = str(e).strip().splitlines()[-1]
    try:
        for c in contenders:
            run_round(c, frames[:WARMUP_FRAMES])
        contenders[0].preprocess_ms.clear()
        p50 = {c.name: [] for c in contenders}
        top1 = {}
        for r in range(rounds):
            order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for c in order:
                times, preds = run_round(c, frames)
                p50[c.name].append(statistics.median(times))
                top1[c.name] = float(np.mean(np.array(preds) == labels))
        stages = {c.name: stage_p50(c, frames, rounds) for c in contenders[:2]}
    finally:
        for c in contenders:
            c.close()
    clf = contenders[0].clf
    med = {k: statistics.median(v) for k, v in p50.items()}
    out = {"model": str(model), "input": f"{clf.input.shape[1]}x{clf.input.shape[2]}x{clf.preprocessing.channels} "
                                        f"{clf.input.dtype.name}",
           "normalisation": {"mean": clf.preprocessing.mean, "std": clf.preprocessing.std},
           "p50_ms": med, "p50_ms_per_round": p50, "top1": top1, "frames": len(frames), "rounds": rounds,
           "edgecnn_preprocess_p50_ms": statistics.median(contenders[0].preprocess_ms),
           "edgecnn_over_bare": med["edgecnn"] / med["bare loop"], "skipped": skipped, "stages_p50_ms": stages}
    if "MediaPipe" in med:
        out["edgecnn_over_mediapipe"] = med["edgecnn"] / med["MediaPipe"]
    return out


def opencv_threads(model: Path, frames: list[np.ndarray], rounds: int) -> dict:
    """edgecnn's preprocess p50 with OpenCV at 1 thread vs its default, interleaved rounds (run unpinned)."""
    import cv2

    default = cv2.getNumThreads()
    clf = Classifier(model, RuntimeOptions(threads=1))
    p50 = {1: [], default: []}
    try:
        for r in range(rounds):
            for n in ((1, default) if r % 2 == 0 else (default, 1)):
                cv2.setNumThreads(n)
                t = []
                for f in frames:
                    t0 = time.perf_counter_ns()
                    clf.preprocess(f, "bgr")
                    t.append((time.perf_counter_ns() - t0) / 1e6)
                p50[n].append(statistics.median(t))
    finally:
        cv2.setNumThreads(default)
    return {"default_threads": default, "preprocess_p50_ms": {str(k): statistics.median(v) for k, v in p50.items()}}


def per_frame(models: list[Path], photos: Path, n_frames: int, rounds: int, pin: bool = True) -> dict:
    """Step 8 of tools/benchmark.py: :func:`compare` for each model, plus the OpenCV thread check."""
    frames, labels = camera_frames(photos, n_frames)
    out = {"photos": str(photos), "frames": n_frames, "frame_size": "640x480", "mediapipe": mediapipe_version(),
           "opencv_threads": opencv_threads(models[0], frames, rounds)}
    saved = os.sched_getaffinity(0) if pin and hasattr(os, "sched_getaffinity") else None
    out["pinned_cpu"] = pin_to_one_cpu() if pin else None
    try:
        out["models"] = [compare(m, frames, labels, rounds) for m in models]
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)
    return out


def _ok(value: float, key: str) -> str:
    return f"(target <= {TARGETS[key]:g}: {'met' if value <= TARGETS[key] else 'MISSED'})"


def report_lines(r: dict) -> list[str]:
    """Human-readable lines for :func:`per_frame`'s result."""
    ot = r["opencv_threads"]["preprocess_p50_ms"]
    pin = f"pinned to CPU {r['pinned_cpu']}" if r["pinned_cpu"] is not None else "not pinned"
    lines = [f"8. per frame, {r['frames']} 640x480 frames of real photos ({r['photos']}), 1 interpreter thread, {pin}, "
             f"median of the per-round p50 over interleaved rounds; MediaPipe "
             f"{r['mediapipe'] or 'not installed (pip install -e .[bench])'}:"]
    for m in r["models"]:
        p, t = m["p50_ms"], m["top1"]
        pre = m["edgecnn_preprocess_p50_ms"]
        goal = (f" {_ok(pre, 'preprocess_224_uint8_ms')}"
                if m["input"].startswith("224x224x3 uint8") and m["normalisation"]["mean"] else "")
        lines.append(f"   {Path(m['model']).name} ({m['input']}, mean {m['normalisation']['mean']} std "
                     f"{m['normalisation']['std']}):")
        lines.append(f"     edgecnn {p['edgecnn']:.3f} ms (preprocess {pre:.3f} ms{goal})   bare loop "
                     f"{p['bare loop']:.3f} ms" + (f"   MediaPipe {p['MediaPipe']:.3f} ms" if "MediaPipe" in p else ""))
        ratios = f"edgecnn/bare {m['edgecnn_over_bare']:.3f}x {_ok(m['edgecnn_over_bare'], 'over_bare')}"
        if "edgecnn_over_mediapipe" in m:
            ratios += (f"   edgecnn/MediaPipe {m['edgecnn_over_mediapipe']:.3f}x "
                       f"{_ok(m['edgecnn_over_mediapipe'], 'over_mediapipe')}")
        for name, why in m["skipped"].items():
            ratios += f"   {name}: not run ({why})"
        lines.append(f"     {ratios}")
        timing_only = " (random backbone: timing only)" if Path(m["model"]).stem.endswith("_timing") else ""
        lines.append(f"     top-1 on the frames{timing_only}: " + ", ".join(f"{k} {v:.1%}" for k, v in t.items()))
        for name, st in m["stages_p50_ms"].items():
            lines.append(f"     stages p50, {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()) + " ms")
    lines.append(f"   OpenCV threads (unpinned, edgecnn preprocess p50 of the first model): "
                 + ", ".join(f"{k} thread{'s' if k != '1' else ''} {v:.3f} ms" for k, v in ot.items()))
    return lines
