"""What the service parts of ``edgecnn camera`` cost the classifier, measured side by side in one run.

    python tools/bench_service.py                          # shipped Fashion-MNIST int8 model, 640x480 video
    python tools/bench_service.py --rounds 5 --json service-bench.json

Two goals, each compared on the same video in alternating rounds (A, B, A, B, ...; medians of the rounds):

1. ``--serve`` with two MJPEG clients connected (separate processes reading ``/stream.mjpg`` as fast as they can)
   adds at most 5 % to the loop's per-frame time. The clients run on the same machine (curl, or a Python reader
   without curl), so their own CPU competes with the loop here, unlike browsers on other devices. Measured two ways:
   free-running (the video as fast as the loop goes: per-frame ``total`` p50, and FPS), and camera-like (``--max-fps 30``: the per-frame work, i.e. preprocess +
   invoke + postprocess + render from the ``--log``, p50 and mean, since the wait for the next frame dominates
   ``total`` there).
2. ``--mqtt`` to a broker that is down (a port nothing listens on) does not lower the frame rate: free-running FPS
   and ``total`` p50 without ``--mqtt`` vs with it; and, when Mosquitto is installed, with a broker that is up.

First, in process and stable under load: the microseconds the service adds inside the loop's thread per frame,
and the CPU one served JPEG costs the encoder thread.

The video comes from ``tools/make_video.py make`` (real Fashion-MNIST test images, each held ``--hold`` frames, so
the top-1 changes and events happen, with ``--hold 2``). Every run is ``edgecnn camera`` in its own process,
headless. The numbers depend on the machine and on what else runs on it: the machine is printed with them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
STAGES_WORK = ("preprocess", "invoke", "postprocess", "render")
CLIENT = ("import sys, urllib.request\n"
          "r = urllib.request.urlopen(sys.argv[1], timeout=30)\n"
          "n = 0\n"
          "while True:\n"
          "    line = r.readline()\n"
          "    if not line: break\n"
          "    if line.startswith(b'Content-Length:'):\n"
          "        r.readline(); r.read(int(line.split(b':')[1])); n += 1\n"
          "print(n)\n")


def log(msg: str) -> None:
    click.echo(msg, err=True)


def camera(model: Path, video: Path, workdir: Path, extra: list[str], clients: int = 0) -> dict:
    """One ``edgecnn camera`` run; returns its summary plus per-frame work times (ms) and frames the clients got."""
    frame_log = workdir / "frames.jsonl"
    cmd = [sys.executable, "-m", "edgecnn", "camera", str(model), "--source", str(video), "--headless", "--json",
           "--log", str(frame_log), "--overwrite", "--hold", "2", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers = []
    if clients:
        for line in proc.stderr:
            if line.startswith("web view: "):
                url = line.split(" ", 2)[2].strip() + "stream.mjpg"
                readers = [subprocess.Popen(client_command(url), stdout=subprocess.PIPE, text=True)
                           for _ in range(clients)]
                break
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise click.ClickException(f"camera run failed: {' '.join(cmd)}\n{err}")
    got = [int(r.communicate(timeout=60)[0].strip() or 0) for r in readers]
    summary = json.loads(out)
    recs = [json.loads(line) for line in frame_log.read_text().splitlines()]
    summary["work_ms"] = [sum(r["ms"][s] for s in STAGES_WORK) for r in recs if "event" not in r]
    summary["client_frames"] = got
    return summary


def client_command(url: str) -> list[str]:
    """A stream client that prints how many frames it got: curl (C, light, like a browser on another device would
    be to this one) counting the parts it wrote, else a Python reader."""
    if shutil.which("curl"):
        return ["sh", "-c", f"curl -sN {url} | grep -ac '^Content-Type: image/jpeg'"]
    return [sys.executable, "-c", CLIENT, url]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compare(name: str, runs: dict[str, list[dict]], metrics: dict) -> dict:
    """Per condition: the median over rounds of each metric, and the median over rounds of its ratio to the first
    condition's value in the same round (paired, so drift in the machine's load between rounds cancels)."""
    rows = {}
    base = next(iter(runs))
    if not runs[base]:
        return rows
    for cond, results in runs.items():
        rows[cond] = {m: statistics.median(f(r) for r in results) for m, f in metrics.items()}
        for m, f in metrics.items():
            pairs = [f(r) / f(b) for r, b in zip(results, runs[base]) if f(b)]
            rows[cond][f"{m}_ratio"] = statistics.median(pairs) if pairs else None
    log(f"\n{name} (median of {len(runs[base])} rounds; x: median of the per-round ratios to '{base}')")
    for cond, row in rows.items():
        log(f"  {cond:<30} " + "  ".join(
            f"{m} {row[m]:.4g}" + (f" (x{row[m + '_ratio']:.3f})" if row[m + "_ratio"] is not None else "")
            for m in metrics))
    return rows


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_1min": os.getloadavg()[0], "python": platform.python_version(), "os": platform.platform()}


@click.command()
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=ROOT / "models" / "fashion_mnist" / "int8.tflite", show_default=True)
@click.option("--count", type=click.IntRange(min=10), default=200, show_default=True,
              help="Test images in the video (each held --hold frames): free-running runs play all of it.")
@click.option("--hold", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--paced-frames", type=click.IntRange(min=10), default=300, show_default=True,
              help="Frames of each camera-like (--max-fps 30) run.")
@click.option("--rounds", type=click.IntRange(min=0), default=3, show_default=True,
              help="Rounds of the side-by-side process runs (0: only the in-process costs).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the results.")
def main(model, count, hold, paced_frames, rounds, json_path):
    """Measure the cost of --serve (two clients) and of --mqtt with the broker down (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-svc-bench-") as tmp:
        tmp = Path(tmp)
        video = tmp / "clip.avi"
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_video.py"), "make", str(video), "--idx",
                        str(ROOT / "models" / "fashion_mnist_sample"), "--count", str(count), "--hold", str(hold)],
                       check=True, capture_output=True)
        log(f"video: {count * hold} frames, 640x480; model {model}; machine {machine()}")
        in_process = loop_thread_costs(model, video)
        serve_free = {"no --serve": [], "--serve, 2 clients": []}
        serve_paced = {"no --serve (30 fps)": [], "--serve, 2 clients (30 fps)": []}
        mqtt = {"no --mqtt": [], "--mqtt, broker down": []}
        broker = _broker(tmp)
        if broker is not None:
            mqtt["--mqtt, broker up"] = []
        try:
            for r in range(rounds):
                log(f"round {r + 1}/{rounds}")
                serve_free["no --serve"].append(camera(model, video, tmp, []))
                serve_free["--serve, 2 clients"].append(camera(model, video, tmp, ["--serve", "0"], clients=2))
                paced = ["--max-fps", "30", "--frames", str(paced_frames)]
                serve_paced["no --serve (30 fps)"].append(camera(model, video, tmp, paced))
                serve_paced["--serve, 2 clients (30 fps)"].append(
                    camera(model, video, tmp, [*paced, "--serve", "0"], clients=2))
                mqtt["no --mqtt"].append(camera(model, video, tmp, []))
                mqtt["--mqtt, broker down"].append(
                    camera(model, video, tmp, ["--mqtt", f"mqtt://127.0.0.1:{free_port()}/bench"]))
                if broker is not None:
                    mqtt["--mqtt, broker up"].append(
                        camera(model, video, tmp, ["--mqtt", f"mqtt://127.0.0.1:{broker[1]}/bench"]))
        finally:
            if broker is not None:
                broker[0].terminate()
                broker[0].wait()
        p50 = lambda xs: statistics.median(xs)  # noqa: E731
        results = {
            "machine": machine(),
            "loop_thread": in_process,
            "serve_free_running": compare("--serve, free-running", serve_free, {
                "total_p50_ms": lambda s: s["stages_ms"]["total"]["p50"], "fps": lambda s: s["fps"],
                "client_frames": lambda s: min(s["client_frames"] or [0])}),
            "serve_camera_like": compare("--serve, --max-fps 30: per-frame work (all stages but capture)", serve_paced, {
                "work_p50_ms": lambda s: p50(s["work_ms"]), "work_mean_ms": lambda s: statistics.fmean(s["work_ms"]),
                "client_frames": lambda s: min(s["client_frames"] or [0])}),
            "mqtt": compare("--mqtt, free-running", mqtt, {
                "fps": lambda s: s["fps"], "total_p50_ms": lambda s: s["stages_ms"]["total"]["p50"],
                "events": lambda s: s["service"]["events"],
                "published": lambda s: s["service"].get("mqtt", {}).get("published", 0)}),
        }
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
        log(f"wrote {json_path}")


def loop_thread_costs(model: Path, video: Path, frames: int = 300) -> dict:
    """In process, without any other load from this tool: what the service adds inside the loop's own thread per
    frame (the sinks' ``on_frame``: event rule, log-free; web view reference; MQTT publish with the broker down), in
    microseconds, and the CPU one served frame costs the encoder thread (annotate + JPEG encode), in ms."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from edgecnn.config import EventOptions, RuntimeOptions, ServiceOptions
    from edgecnn.loop import LoopResult
    from edgecnn.overlay import annotate
    from edgecnn.runtime import Classifier
    from edgecnn.service import Service
    from edgecnn.sources import OpenCVSource

    clf = Classifier(model, RuntimeOptions())
    src = OpenCVSource(str(video), live=False)
    shots = []
    for _ in range(frames):
        frame = src.read()
        shots.append((frame, clf.classify(frame.image, 3, 0.0, frame.order).top))
    res = LoopResult()
    res.stages_ms["invoke"].append(0.1)
    opts = ServiceOptions(events=EventOptions(hold=2), serve=("127.0.0.1", 0),
                          mqtt_url=f"mqtt://127.0.0.1:{free_port()}/bench")
    svc = Service(opts, clf, src)
    try:
        t0 = time.perf_counter()
        for frame, top in shots:
            for sink in svc.sinks:
                sink.on_frame(frame, top, res)
        per_frame_us = (time.perf_counter() - t0) / len(shots) * 1e6
        events = svc.detector.events
    finally:
        svc.close()
        src.close()
    encode_ms = []
    for frame, top in shots[:60]:
        t0 = time.process_time()
        cv2.imencode(".jpg", annotate(frame.image, frame.order, top, 30.0, 0.1, None), [cv2.IMWRITE_JPEG_QUALITY, 80])
        encode_ms.append((time.process_time() - t0) * 1e3)
    out = {"sinks_us_per_frame": per_frame_us, "events": events, "frames": len(shots),
           "encode_cpu_ms_per_jpeg": statistics.median(encode_ms)}
    log(f"\nloop thread, in process: the sinks (events + web view + MQTT with the broker down) take "
        f"{per_frame_us:.1f} us per frame ({events} events in {len(shots)} frames); one served JPEG costs the "
        f"encoder thread {out['encode_cpu_ms_per_jpeg']:.2f} ms CPU (at --serve-fps 10: "
        f"{out['encode_cpu_ms_per_jpeg'] * 10 / 1000 * 100:.1f} % of one core)")  # 10 JPEG/s, ms -> s, %
    return out


def _broker(tmp: Path):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(exe, os.X_OK):
        log("no Mosquitto: skipping the broker-up comparison")
        return None
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


if __name__ == "__main__":
    main()
