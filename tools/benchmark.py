"""Performance of edgecnn on this machine, measured side by side in one run.

    python tools/benchmark.py                 # uses models/fashion_mnist/{int8,float32}.tflite when present
    python tools/benchmark.py --json perf.json

Prints, with the machine it ran on:

1. int8 vs float32 .tflite p50, 1 thread (``edgecnn bench``'s own code, rounds alternating A/B, median of rounds);
2. int8 .tflite vs the Keras model called on one image (``model(x, training=False)``);
3. ``edgecnn bench`` p50 vs a bare ``set_tensor + invoke`` loop on a separate interpreter: the measurement overhead;
4. camera-loop time per frame minus (capture + invoke) on a 640x480 video: edgecnn's own per-frame overhead
   (preprocess, postprocess, timing, glue), headless, no log;
5. preprocessing time of one 640x480 BGR frame;
6. peak RSS (``ru_maxrss`` of the child) of ``edgecnn camera`` on that video, headless;
7. wall time of ``edgecnn --help`` and of a one-image ``edgecnn classify`` (median of several start-ups);
8. per frame on real-size photo models: edgecnn vs a bare LiteRT loop vs MediaPipe's ImageClassifier in VIDEO mode
   (tools/frame_bench.py; ``--per-frame`` runs only this step, ``--model`` picks the models, ``--photos`` the photos).

Targets from the issue: bench overhead <= 5 %, loop overhead <= 0.5 ms/frame, preprocessing <= 0.5 ms,
camera-loop peak RSS <= 150 MB, ``--help`` <= 0.5 s. The int8/float32 ratio is reported, never assumed: it depends
on the CPU's integer kernels.

When the shipped models are missing, the ResNet-8 Fashion-MNIST architecture (edgecnn.train.model) is built with random
weights and converted with edgecnn.train.convert (int8 calibrated on real test images): latency does not depend on the
weights' values. The Keras model is ``model.keras`` next to the shipped models when present, else that build.
TensorFlow is imported only for steps that need Keras, after the TFLite measurements.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn import bench as B  # noqa: E402
from edgecnn import stats as S  # noqa: E402
from edgecnn.config import Preprocessing, RuntimeOptions  # noqa: E402
from edgecnn.outputs import write_text  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
import frame_bench as FB  # noqa: E402

SHIPPED = ROOT / "models" / "fashion_mnist"
TARGETS = {"bench_overhead_pct": 5.0, "loop_overhead_ms": 0.5, "preprocess_ms": 0.5, "camera_peak_rss_mb": 150.0,
           "help_s": 0.5}


def log(msg: str) -> None:
    click.echo(msg, err=True)


def _edgecnn() -> list[str]:
    exe = Path(sys.executable).with_name("edgecnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edgecnn"]


# ----------------------------------------------------------------------------------------------- models
def _fashion_test(n: int = 300):
    """(n, 28, 28) uint8 real Fashion-MNIST test images and their labels."""
    from edgecnn.train.data import FASHION_MNIST_DIR, parse_idx_images, parse_idx_labels, read_idx_file

    x = parse_idx_images(read_idx_file(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte"))
    y = parse_idx_labels(read_idx_file(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte"))
    return x[:n], y[:n]


def _keras_model(workdir: Path, keras_path: Path | None = None):
    """``keras_path``, else the shipped model.keras if present, else ResNet-8 (28x28x1, 10 classes) with random
    weights."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if keras_path is not None:
        return keras.models.load_model(keras_path, compile=False), str(keras_path)
    for p in (SHIPPED / "model.keras", *sorted(SHIPPED.glob("*.keras"))):
        if p.is_file():
            return keras.models.load_model(p, compile=False), f"{p.relative_to(ROOT)}"
    from edgecnn.train.model import build

    keras.utils.set_random_seed(0)
    return build("resnet8", (28, 28, 1), 10), "ResNet-8 built here (random weights)"


def resolve_models(workdir: Path) -> tuple[Path, Path, str]:
    """(int8 path, float32 path, where they came from); builds them when not shipped."""
    i8, f32 = SHIPPED / "int8.tflite", SHIPPED / "float32.tflite"
    if i8.is_file() and f32.is_file():
        return i8, f32, f"shipped: {i8.relative_to(ROOT)}, {f32.relative_to(ROOT)}"
    log("shipped models not found: building ResNet-8 (random weights) and converting it ...")
    from edgecnn.train.data import FASHION_MNIST_LABELS
    from edgecnn.metadata import embed_metadata
    from edgecnn.train.convert import convert

    model, _ = _keras_model(workdir)
    x, _ = _fashion_test(200)
    pre = Preprocessing(28, 28, 1, resize="stretch", mean=(0.0,), std=(1.0,))
    labels = list(FASHION_MNIST_LABELS)
    i8, f32 = workdir / "int8.tflite", workdir / "float32.tflite"
    i8.write_bytes(embed_metadata(convert(model, x[..., None], io="int8"), labels, pre))
    f32.write_bytes(embed_metadata(convert(model, None), labels, pre))
    return i8, f32, "ResNet-8 built here with random weights (edgecnn.train.model + edgecnn.train.convert)"


# ----------------------------------------------------------------------------------------------- measurements
def int8_vs_float(i8: Path, f32: Path, runs: int, rounds: int) -> dict:
    """Alternate int8/float32 bench rounds at 1 thread; median of the per-round p50s."""
    make = lambda t: RuntimeOptions(threads=t)  # noqa: E731
    p50 = {"int8": [], "float32": []}
    rows = {}
    for r in range(rounds):
        order = [("int8", i8), ("float32", f32)] if r % 2 == 0 else [("float32", f32), ("int8", i8)]
        for name, path in order:
            (row, _), = B.run([str(path)], [1], make, runs, B.DEFAULT_WARMUP, progress=False)
            p50[name].append(row["latency_ms"]["p50"])
            rows[name] = row
    med = {k: statistics.median(v) for k, v in p50.items()}
    return {"int8_p50_ms": med["int8"], "float32_p50_ms": med["float32"],
            "float32_over_int8": med["float32"] / med["int8"], "rounds": rounds, "runs": runs,
            "int8_size_bytes": rows["int8"]["size_bytes"], "float32_size_bytes": rows["float32"]["size_bytes"],
            "int8_first_invoke_ms": rows["int8"]["first_invoke_ms"], "backend": rows["int8"]["backend"],
            "backend_version": rows["int8"]["backend_version"]}


def bench_vs_bare(i8: Path, runs: int, rounds: int) -> dict:
    """`edgecnn bench` (Classifier.invoke timed per call) vs a bare set_tensor+invoke loop on its own interpreter.

    The bare loop is timed two ways: per iteration (p50, like bench) and once around the whole loop (mean; no clock
    reads inside). Rounds alternate; medians are reported.
    """
    from edgecnn.runtime import Classifier

    clf = Classifier(i8, RuntimeOptions(threads=1))
    tensor = B.random_tensor(clf)
    # the same kernels as the classifier (the reference ones where the optimized ones crash on this model)
    it = clf.backend.interpreter_class(model_content=i8.read_bytes(), num_threads=1, **clf.interpreter_options)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    set_tensor, invoke = it.set_tensor, it.invoke

    def bare_once():
        set_tensor(idx, tensor)
        invoke()

    bench_p50, bench_mean, bare_p50, bare_mean = [], [], [], []
    for r in range(rounds):
        for which in (("bench", "bare") if r % 2 == 0 else ("bare", "bench")):
            if which == "bench":
                t = B.bench_classifier(clf, tensor, runs, B.DEFAULT_WARMUP)
                s = S.latency_stats(t.durations_ms)
                bench_p50.append(s["p50"])
                bench_mean.append(s["mean"])
            else:
                t = B.time_calls(bare_once, runs, B.DEFAULT_WARMUP)
                bare_p50.append(S.latency_stats(t.durations_ms)["p50"])
                t0 = time.perf_counter_ns()
                for _ in range(runs):
                    set_tensor(idx, tensor)
                    invoke()
                bare_mean.append((time.perf_counter_ns() - t0) / 1e6 / runs)
    m = statistics.median
    return {"bench_p50_ms": m(bench_p50), "bare_p50_ms": m(bare_p50), "bench_mean_ms": m(bench_mean),
            "bare_loop_mean_ms": m(bare_mean),
            "overhead_p50_pct": 100 * (m(bench_p50) / m(bare_p50) - 1),
            "overhead_mean_pct": 100 * (m(bench_mean) / m(bare_mean) - 1), "rounds": rounds, "runs": runs}


def make_video(path: Path, frames: int) -> None:
    """640x480 video of real Fashion-MNIST test images (tools/make_video.py's layout), MJPG .avi."""
    import cv2

    sys.path.insert(0, str(ROOT / "tools"))
    from make_video import FRAME_SIZE, compose

    x, _ = _fashion_test(frames)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, FRAME_SIZE)
    for img in x:
        w.write(compose(img))
    w.release()


def loop_overhead(i8: Path, video: Path, frames: int) -> dict:
    """Headless camera loop, no log: wall time per frame minus mean capture and mean invoke."""
    from edgecnn.sources import open_source
    from edgecnn.config import LoopOptions
    from edgecnn.loop import run_loop
    from edgecnn.runtime import Classifier

    clf = Classifier(i8, RuntimeOptions(threads=1, resize="center-crop"))
    B.time_calls(lambda: clf.invoke(B.random_tensor(clf)), 1, B.DEFAULT_WARMUP)
    src = open_source(str(video))
    try:
        res = run_loop(src, clf, LoopOptions(max_frames=frames))
    finally:
        src.close()
    mean = {k: v.total / v.count for k, v in res.stages_ms.items()}
    per_frame = res.wall_s * 1e3 / res.frames
    return {"frames": res.frames, "per_frame_ms": per_frame, "capture_mean_ms": mean["capture"],
            "invoke_mean_ms": mean["invoke"], "preprocess_mean_ms": mean["preprocess"],
            "postprocess_mean_ms": mean["postprocess"], "render_mean_ms": mean["render"],
            "overhead_ms": per_frame - mean["capture"] - mean["invoke"], "fps": res.frames / res.wall_s}


def preprocess_time(i8: Path, runs: int) -> dict:
    """p50 of Classifier.preprocess on one 640x480 BGR frame (centre crop -> 28x28 gray -> int8 tensor)."""
    from edgecnn.runtime import Classifier

    clf = Classifier(i8, RuntimeOptions(threads=1, resize="center-crop"))
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    t = B.time_calls(lambda: clf.preprocess(frame, "bgr"), runs, B.DEFAULT_WARMUP)
    s = S.latency_stats(t.durations_ms)
    return {"p50_ms": s["p50"], "p90_ms": s["p90"], "runs": runs, "input_dtype": clf.input.dtype.name,
            "model_input": f"{clf.preprocessing.height}x{clf.preprocessing.width}x{clf.preprocessing.channels}"}


def child_peak_rss_mb(cmd: list[str]) -> tuple[float, int]:
    """Run ``cmd`` and return (its peak RSS in MB, exit code).

    A child's ``ru_maxrss`` also counts the memory it had between fork and exec, i.e. a copy of this (large,
    TensorFlow-loaded) process, so ``cmd`` is started by a fresh minimal Python that reports its child's
    ``ru_maxrss`` (KiB on Linux) instead.
    """
    tramp = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
             "stderr=subprocess.DEVNULL).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")
    out = subprocess.run([sys.executable, "-S", "-c", tramp, *cmd], capture_output=True, text=True, check=True)
    kib, rc = out.stdout.split()
    return int(kib) / 1024, int(rc)


def wall_times(cmd: list[str], n: int) -> dict:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - t0)
        if rc != 0:
            raise click.ClickException(f"{' '.join(cmd)} exited {rc}")
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": n}


def keras_vs_tflite(i8: Path, workdir: Path, runs: int, keras_path: Path | None = None) -> dict:
    """int8 .tflite (1 thread) vs the Keras model called on one image, both timed by the same time_calls."""
    from edgecnn.runtime import Classifier

    clf = Classifier(i8, RuntimeOptions(threads=1))
    x, _ = _fashion_test(1)
    tensor = clf.preprocess(x[0])
    t_lite = S.latency_stats(B.bench_classifier(clf, tensor, runs, B.DEFAULT_WARMUP).durations_ms)
    model, source = _keras_model(workdir, keras_path)
    xk = x[0][None, ..., None].astype(np.float32)
    t_keras = S.latency_stats(B.time_calls(lambda: model(xk, training=False), max(20, runs // 5),
                                           B.DEFAULT_WARMUP).durations_ms)
    import tensorflow as tf

    return {"keras_model": source, "keras_p50_ms": t_keras["p50"], "tflite_int8_p50_ms": t_lite["p50"],
            "keras_over_int8": t_keras["p50"] / t_lite["p50"], "tensorflow": tf.__version__,
            "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default (all cores)"}


def _per_frame(models: tuple[Path, ...], photos: Path, frames: int, rounds: int, pin: bool) -> dict:
    log("8 per frame: edgecnn vs bare loop vs MediaPipe ...")
    return FB.per_frame(list(models) or FB.default_models(photos=photos), photos, frames, rounds, pin)


# ----------------------------------------------------------------------------------------------- main
def _ok(value, key) -> str:
    """'(target <= T: met)' or '... MISSED' for a measurement that should stay at or below TARGETS[key]."""
    t = TARGETS[key]
    return f"(target <= {t:g}: {'met' if value <= t else 'MISSED'})"


@click.command()
@click.option("--runs", type=click.IntRange(min=50), default=1000, show_default=True,
              help="Timed invokes per measurement.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Alternating rounds for the A/B comparisons (medians reported).")
@click.option("--frames", type=click.IntRange(min=50), default=300, show_default=True,
              help="Frames of the 640x480 video for the camera-loop measurements.")
@click.option("--keras", "keras_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The Keras model for step 2 (e.g. the model.keras the shipped .tflite files came from). "
                   "Default: models/fashion_mnist/*.keras, else ResNet-8 with random weights.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Also write every number to this JSON file.")
@click.option("--per-frame", "per_frame_only", is_flag=True,
              help="Run only step 8 (per frame: edgecnn vs bare loop vs MediaPipe on real-size photo models).")
@click.option("--model", "frame_models", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Step 8's models (repeatable). Default: MobileNetV2 alpha 0.35 (ImageNet) at 224x224 uint8 and "
                   "96x96 int8/uint8, and alpha 1.0 at 224x224 uint8 with a random backbone (timing only), built "
                   "once into build/photo-models/ by tools/build_photo_model.py.")
@click.option("--photos", type=click.Path(file_okay=False, exists=True, path_type=Path), default=FB.PHOTOS,
              show_default=True, help="Step 8's photos: a flowers5-style folder; its test split makes the frames.")
@click.option("--frame-rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Step 8's interleaved rounds.")
@click.option("--pin/--no-pin", default=True, show_default=True,
              help="Step 8: pin the process to one CPU (MediaPipe has no thread setting).")
def main(runs, rounds, frames, keras_path, json_out, per_frame_only, frame_models, photos, frame_rounds, pin):
    """Measure edgecnn's performance targets side by side on this machine (see the module docstring)."""
    env = B.environment()
    out = {"environment": env}
    if per_frame_only:
        out["per_frame"] = _per_frame(frame_models, photos, frames, frame_rounds, pin)
        click.echo("\n".join([f"machine: {B.describe_environment(env)}", *FB.report_lines(out["per_frame"])]))
        if json_out:
            write_text(json_out, json.dumps(out, indent=1, default=str))
        return
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        work = Path(tmp)
        i8, f32, where = resolve_models(work)
        out["models"] = where
        log("1/7 int8 vs float32 ...")
        out["int8_vs_float32"] = int8_vs_float(i8, f32, runs, rounds)
        log("3/7 bench vs bare loop ...")
        out["bench_vs_bare"] = bench_vs_bare(i8, runs, rounds)
        video = work / "fashion_640x480.avi"
        make_video(video, frames)
        log("4/7 camera loop ...")
        out["camera_loop"] = loop_overhead(i8, video, frames)
        log("5/7 preprocessing ...")
        out["preprocess_640x480"] = preprocess_time(i8, runs)
        log("6/7 camera peak RSS ...")
        rss, rc = child_peak_rss_mb([*_edgecnn(), "camera", str(i8), "--source", str(video), "--headless",
                                     "--threads", "1", "--frames", str(frames)])
        if rc != 0:
            raise click.ClickException(f"edgecnn camera exited {rc} while measuring its peak RSS")
        out["camera_peak_rss_mb"] = rss
        log("7/7 start-up times ...")
        img = work / "one.png"
        import cv2

        cv2.imwrite(str(img), _fashion_test(1)[0][0])
        out["startup"] = {"help": wall_times([*_edgecnn(), "--help"], 7),
                          "classify_one_image": wall_times([*_edgecnn(), "classify", str(i8), str(img)], 5)}
        log("2/7 Keras vs int8 (imports TensorFlow) ...")
        out["keras_vs_int8"] = keras_vs_tflite(i8, work, runs, keras_path)
    out["per_frame"] = _per_frame(frame_models, photos, frames, frame_rounds, pin)

    a, bb, c = out["int8_vs_float32"], out["bench_vs_bare"], out["camera_loop"]
    p, k, s = out["preprocess_640x480"], out["keras_vs_int8"], out["startup"]
    lines = [
        f"machine: {B.describe_environment(env)}",
        f"backend: {a['backend']} {a['backend_version']}; models: {out['models']}",
        "",
        f"1. int8 vs float32 .tflite, 1 thread, p50 (median of {rounds} alternating rounds x {runs} runs):",
        f"   int8 {a['int8_p50_ms']:.4f} ms ({a['int8_size_bytes']:,} B)   float32 {a['float32_p50_ms']:.4f} ms "
        f"({a['float32_size_bytes']:,} B)   float32/int8 = {a['float32_over_int8']:.2f}x "
        f"({'int8 faster' if a['float32_over_int8'] > 1 else 'int8 NOT faster'})",
        f"2. Keras model(x) on one image vs int8 .tflite, 1 image, p50: Keras {k['keras_p50_ms']:.3f} ms "
        f"({k['keras_model']}, TF {k['tensorflow']})   int8 {k['tflite_int8_p50_ms']:.4f} ms   "
        f"Keras/int8 = {k['keras_over_int8']:.1f}x",
        f"3. edgecnn bench p50 {bb['bench_p50_ms']:.4f} ms vs bare set_tensor+invoke p50 {bb['bare_p50_ms']:.4f} ms: "
        f"overhead {bb['overhead_p50_pct']:+.1f}% {_ok(bb['overhead_p50_pct'], 'bench_overhead_pct')}; "
        f"means {bb['bench_mean_ms']:.4f} vs bare loop (one clock around it) {bb['bare_loop_mean_ms']:.4f} ms: "
        f"{bb['overhead_mean_pct']:+.1f}%",
        f"4. camera loop on a 640x480 video, headless, {c['frames']} frames: {c['per_frame_ms']:.3f} ms/frame "
        f"({c['fps']:.0f} FPS) = capture {c['capture_mean_ms']:.3f} + invoke {c['invoke_mean_ms']:.3f} + "
        f"overhead {c['overhead_ms']:.3f} ms {_ok(c['overhead_ms'], 'loop_overhead_ms')} "
        f"(of which preprocess {c['preprocess_mean_ms']:.3f}, postprocess {c['postprocess_mean_ms']:.3f})",
        f"5. preprocessing one 640x480 BGR frame -> {p['model_input']} {p['input_dtype']}: p50 {p['p50_ms']:.3f} ms "
        f"{_ok(p['p50_ms'], 'preprocess_ms')}",
        f"6. edgecnn camera peak RSS (ru_maxrss): {out['camera_peak_rss_mb']:.1f} MB "
        f"{_ok(out['camera_peak_rss_mb'], 'camera_peak_rss_mb')}",
        f"7. start-up wall time (median): edgecnn --help {s['help']['median_s']:.3f} s "
        f"{_ok(s['help']['median_s'], 'help_s')}; "
        f"one-image edgecnn classify {s['classify_one_image']['median_s']:.3f} s",
        *FB.report_lines(out["per_frame"]),
    ]
    click.echo("\n".join(lines))
    if json_out:
        write_text(json_out, json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
