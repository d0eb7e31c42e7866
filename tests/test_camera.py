"""edgecnn camera: the loop with fake sources and classifiers (a source that fails mid-run, one faster than the
model), the newest-frame reader, source dispatch, the log/summary contract, and the command headless on tiny
models."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn import sources as cam
from edgecnn.cli import main
from edgecnn.errors import SourceError
from edgecnn.config import LoopOptions
from edgecnn.loop import STAGES, FrameLog, Renderer, run_loop
from edgecnn.stats import RecentSamples
from edgecnn.runtime import Prediction

STAT_KEYS = {"p50", "p90", "p99", "mean", "max"}


# ----------------------------------------------------------------------------------------------- fakes
class FakeSource:
    """A finite source of ``n`` frames; after ``fail_after`` frames every read fails (returns None)."""

    live = False

    def __init__(self, n=10, fail_after=None, shape=(48, 64, 3), camera_index=False):
        self.n, self.fail_after, self.shape = n, fail_after, shape
        self.description = "fake"
        self.is_camera_index = camera_index
        self.dropped = 0
        self.reads = 0
        self.closed = False

    def read(self):
        i = self.reads
        self.reads += 1
        if self.fail_after is not None and i >= self.fail_after:
            return None
        if i >= self.n:
            raise cam.EndOfSource
        return cam.Frame(np.full(self.shape, i % 256, np.uint8), "bgr", i, time.perf_counter())

    def close(self):
        self.closed = True


class FakeClassifier:
    """Predicts class ``frame value % 3`` with score 1; ``invoke_hook`` runs inside invoke (to be slow, or to raise)."""

    def __init__(self, invoke_hook=None):
        self.backend = SimpleNamespace(name="fake", version="0")
        self.threads = 1
        self.path = Path("fake.tflite")
        self.invoke_hook = invoke_hook
        self.seen = []

    def preprocess(self, image, order):
        return image[:1, :1, 0].astype(np.int64).copy()

    def invoke(self, tensor):
        if self.invoke_hook:
            self.invoke_hook()
        self.seen.append(int(tensor[0, 0]))
        return tensor

    def postprocess(self, raw, k, threshold):
        c = int(raw[0, 0]) % 3
        return [Prediction(c, f"class{c}", 1.0)][:k]


def _read_log(path):
    """The per-frame records of a --log (event records, which have an "event" key, left out)."""
    return [rec for rec in map(json.loads, Path(path).read_text().splitlines()) if "event" not in rec]


def _check_log_record(rec):
    assert set(rec) == {"frame", "t", "top", "ms"}
    assert set(rec["ms"]) == {*STAGES, "total"}
    for p in rec["top"]:
        assert set(p) == {"index", "label", "score"}


def _check_summary(s, frames):
    assert s["frames"] == frames
    assert set(s["stages_ms"]) == {*STAGES, "total"}
    for v in [*s["stages_ms"].values(), s["frame_age_ms"]]:
        assert set(v) == STAT_KEYS
        assert v["p50"] <= v["p90"] <= v["p99"] <= v["max"]
    for key in ("fps", "dropped", "backend", "threads", "model"):
        assert key in s


# ----------------------------------------------------------------------------------------------- loop
def test_file_source_every_frame_in_order_with_log(tmp_path):
    log = FrameLog(tmp_path / "f.jsonl")
    res = run_loop(FakeSource(n=7), FakeClassifier(), LoopOptions(top_k=1), log=log)
    log.close()
    assert res.ended == "end of source" and res.frames == 7 and res.dropped == 0
    recs = _read_log(tmp_path / "f.jsonl")
    assert [r["frame"] for r in recs] == list(range(7))
    for i, r in enumerate(recs):
        _check_log_record(r)
        assert r["top"] == [{"index": i % 3, "label": f"class{i % 3}", "score": 1.0}]
    assert [r["t"] for r in recs] == sorted(r["t"] for r in recs)
    _check_summary(res.summary(FakeClassifier()), 7)


def test_long_run_keeps_a_bounded_latency_window_and_exact_counts(tmp_path):
    """A service runs for days: the loop keeps only the last ``latency_window`` latencies per series, while counts,
    totals, means and maxima cover every frame, and the summary says what the percentiles cover."""
    from edgecnn.report import camera_summary_text

    window, n = 8, 50
    res = run_loop(FakeSource(n=n), FakeClassifier(), LoopOptions(latency_window=window))
    assert res.frames == n and res.ended == "end of source"
    for series in [*res.stages_ms.values(), res.frame_age_ms]:
        assert len(series) == window and series.count == n and len(series.values()) == window  # bounded
    totals = res.stages_ms["total"]
    s = res.summary(FakeClassifier())
    _check_summary(s, n)
    assert s["latency_window_frames"] == window and s["percentile_frames"] == window
    assert s["processing_fps"] == pytest.approx(n / (totals.total / 1e3), rel=1e-3)
    assert s["stages_ms"]["total"]["mean"] == pytest.approx(totals.total / n, abs=1e-4)
    assert "the last 8 frames (latency window); mean and max: all 50 frames" in camera_summary_text(s)
    short = run_loop(FakeSource(n=5), FakeClassifier(), LoopOptions(latency_window=window)).summary(FakeClassifier())
    assert short["percentile_frames"] == 5 and "latency window" not in camera_summary_text(short)


def test_recent_samples_percentiles_of_the_window_mean_and_max_of_all():
    samples = RecentSamples(4)
    for v in [100.0, 1.0, 2.0, 3.0, 4.0, 5.0]:
        samples.append(v)
    assert list(samples.values()) == [2.0, 3.0, 4.0, 5.0] and samples.last == 5.0 and samples.windowed
    s = samples.stats()
    assert s["p50"] == 3.5 and s["max"] == 100.0 and s["min"] == 1.0 and s["mean"] == pytest.approx(115 / 6)
    cut = RecentSamples(10)
    for v in [1.0, 2.0, 3.0]:
        cut.append(v)
    assert list(cut.copy(2).values()) == [1.0, 2.0] and cut.copy(2).total == 3.0
    with pytest.raises(ValueError):
        RecentSamples(0)


def test_source_failing_mid_run_ends_with_message_and_keeps_the_log(tmp_path):
    log = FrameLog(tmp_path / "f.jsonl")
    src = FakeSource(n=100, fail_after=4)
    res = run_loop(src, FakeClassifier(), LoopOptions(max_failures=3), log=log)
    log.close()
    assert res.failed and res.frames == 4
    assert src.reads == 4 + 3  # gave up after exactly max_failures consecutive failed reads
    assert "stopped returning frames after 4" in res.message and "3 consecutive" in res.message
    assert [r["frame"] for r in _read_log(tmp_path / "f.jsonl")] == [0, 1, 2, 3]
    _check_summary(res.summary(FakeClassifier()), 4)


def test_camera_that_opens_but_never_gives_a_frame_suggests_picamera2():
    res = run_loop(FakeSource(fail_after=0, camera_index=True), FakeClassifier(), LoopOptions(max_failures=2))
    assert res.failed and res.frames == 0
    assert "opened but returned no frames" in res.message and "--source picamera2" in res.message
    s = res.summary(FakeClassifier())
    assert s["frames"] == 0 and s["stages_ms"]["invoke"] is None and s["frame_age_ms"] is None


def test_isolated_failed_reads_are_tolerated():
    class Flaky(FakeSource):
        def read(self):
            if self.reads % 3 == 1:  # every third read fails, never twice in a row
                self.reads += 1
                return None
            return super().read()

    res = run_loop(Flaky(n=12), FakeClassifier(), LoopOptions(max_failures=2))
    assert res.ended == "end of source" and res.failed_reads > 0 and not res.failed


def test_stops_on_max_frames_and_duration():
    res = run_loop(FakeSource(n=100), FakeClassifier(), LoopOptions(max_frames=5))
    assert (res.ended, res.frames) == ("frames", 5)
    ticks = iter(np.arange(0, 100, 0.5))  # fake clock: every clock read advances 0.5 s
    res = run_loop(FakeSource(n=100), FakeClassifier(), LoopOptions(duration_s=3.0), clock=lambda: next(ticks))
    assert res.ended == "duration" and 0 < res.frames < 100


def test_ctrl_c_ends_with_a_summary():
    calls = []

    def hook():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    res = run_loop(FakeSource(n=10), FakeClassifier(hook), LoopOptions())
    assert res.ended == "interrupted" and res.frames == 2
    _check_summary(res.summary(FakeClassifier()), 2)


def test_quit_key_from_the_renderer_ends_the_loop():
    class QuitAfter2(Renderer):
        def __init__(self):
            super().__init__(window=False)
            self.n = 0

        @property
        def active(self):
            return True

        def render(self, frame, top, fps, invoke_ms):
            self.n += 1
            return self.n == 2

    res = run_loop(FakeSource(n=10), FakeClassifier(), LoopOptions(), renderer=QuitAfter2())
    assert (res.ended, res.frames) == ("quit", 2)


class FastLiveSource:
    """A live fake camera: frames are ready as soon as they are asked for, numbered 0, 1, 2, ..."""

    description = "fast fake camera"

    def __init__(self):
        self.produced = 0
        self.lock = threading.Condition()

    def read(self):
        time.sleep(0.0005)
        with self.lock:
            i = self.produced
            self.produced += 1
            self.lock.notify_all()
        return cam.Frame(np.full((8, 8, 3), i % 256, np.uint8), "bgr", i, time.perf_counter())

    def close(self):
        pass


def test_source_faster_than_the_model_drops_stale_frames(tmp_path):
    """The model waits (invoke) until the camera has produced 3 more frames, so frames are certainly overwritten
    while it works: the loop must classify only the newest ones, count the rest as dropped, never go backwards."""
    src = FastLiveSource()
    reader = cam.LatestFrameReader(src, timeout_s=5)

    def slow_invoke():
        with src.lock:
            target = src.produced + 3
            src.lock.wait_for(lambda: src.produced >= target, timeout=5)

    log = FrameLog(tmp_path / "f.jsonl")
    try:
        res = run_loop(reader, FakeClassifier(slow_invoke), LoopOptions(max_frames=6), log=log)
    finally:
        reader.close()
        log.close()
    frames = [r["frame"] for r in _read_log(tmp_path / "f.jsonl")]
    assert res.frames == 6 and len(frames) == 6
    assert all(b > a for a, b in zip(frames, frames[1:]))
    assert any(b - a > 1 for a, b in zip(frames, frames[1:]))  # stale frames were skipped
    assert res.dropped > 0
    assert res.dropped + res.frames <= reader.captured


def test_latest_frame_reader_keeps_only_the_newest_frame():
    reader = cam.LatestFrameReader(FakeSource(n=10), timeout_s=5)
    reader._thread.join(timeout=5)  # the fake produces all 10 frames and ends before we read
    frame = reader.read()
    assert frame.index == 9 and reader.dropped == 9
    with pytest.raises(cam.EndOfSource):
        reader.read()
    reader.close()


def test_latest_frame_reader_reports_failures_without_waiting_for_the_timeout():
    reader = cam.LatestFrameReader(FakeSource(fail_after=0), timeout_s=30)
    t0 = time.monotonic()
    res = run_loop(reader, FakeClassifier(), LoopOptions(max_failures=3))
    reader.close()
    assert res.failed and res.frames == 0
    assert time.monotonic() - t0 < 30  # structural: a 30 s timeout would have been hit 3 times otherwise


def test_four_channel_picamera2_frames_classify_like_bgr(tiny_models, tmp_path):
    """picamera2 XRGB8888 frames (bytes B, G, R, X) give the same result as the same pixels in 3-channel BGR, and
    the loop gives what `Classifier.classify` gives."""
    from edgecnn.runtime import Classifier

    clf = Classifier(tiny_models["int8"])
    bgr = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    xrgb = np.concatenate([bgr, np.full((48, 64, 1), 255, np.uint8)], axis=2)

    class Source(FakeSource):
        def __init__(self, image):
            super().__init__(n=1)
            self.image = image

        def read(self):
            f = super().read()
            return cam.Frame(self.image, "bgr", f.index, f.t_capture)

    tops = []
    for name, image in (("bgr", bgr), ("xrgb", xrgb)):
        log = FrameLog(tmp_path / f"{name}.jsonl")
        assert run_loop(Source(image), clf, LoopOptions(top_k=3), log=log).frames == 1
        log.close()
        tops.append(_read_log(tmp_path / f"{name}.jsonl")[0]["top"])
    assert tops[0] == tops[1] == [p.to_dict() for p in clf.classify(bgr, 3, order="bgr").top]


# ----------------------------------------------------------------------------------------------- sources
def _video(path, n=6, size=(64, 48)):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), (30 * i) % 256, np.uint8))
    w.release()
    return path


def test_open_source_dispatch(tmp_path, image_dir):
    video = _video(tmp_path / "v.avi")
    src = cam.open_source(str(video))
    assert isinstance(src, cam.OpenCVSource) and not src.live
    frames = []
    with pytest.raises(cam.EndOfSource):
        while True:
            frames.append(src.read())
    src.close()
    assert [f.index for f in frames] == list(range(6)) and frames[0].image.shape == (48, 64, 3)

    folder = cam.open_source(str(image_dir))
    assert isinstance(folder, cam.ImageFolderSource) and folder.frame_count == 3
    assert isinstance(cam.open_source(str(image_dir / "*.png")), cam.ImageFolderSource)
    with pytest.raises(SourceError, match="no such file"):
        cam.open_source(str(tmp_path / "missing.mp4"))


def test_picamera2_missing_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(SourceError, match="python3-picamera2"):
        cam.open_source("picamera2")


def test_overlay_draws_on_a_bgr_copy():
    from edgecnn.overlay import draw_overlay, enlarge, to_bgr

    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    bgr = to_bgr(rgb, "rgb")
    assert bgr[0, 0].tolist() == [0, 0, 200] and rgb[0, 0].tolist() == [200, 0, 0]
    assert to_bgr(np.zeros((5, 6, 4), np.uint8), "bgr").shape == (5, 6, 3)
    big = enlarge(bgr)
    assert big.shape[0] >= 360 and big.shape[0] % 28 == 0
    before = big.copy()
    out = draw_overlay(big, [Prediction(1, "shirt", 0.9)], fps=30.0, invoke_ms=1.5)
    assert out is big and not np.array_equal(before, big)


# ----------------------------------------------------------------------------------------------- command
def _camera(args):
    return CliRunner().invoke(main, ["camera", *map(str, args)])


def test_camera_on_a_slideshow_matches_classify(tiny_models, tmp_path):
    """The camera loop and `classify` give the same top-k for the same images (same preprocessing, same model)."""
    import cv2

    rng = np.random.default_rng(3)
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8))
    log = tmp_path / "frames.jsonl"
    r = _camera([tiny_models["int8"], "--source", tmp_path, "--headless", "--log", log, "--json", "-k", "3"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    _check_summary(summary, 4)
    assert summary["ended"] == "end of source" and summary["dropped"] == 0
    assert summary["model"] == str(tiny_models["int8"])
    recs = _read_log(log)
    c = CliRunner().invoke(main, ["classify", str(tiny_models["int8"]), str(tmp_path / "*.png"), "--json"])
    expected = [json.loads(line)["top"] for line in c.stdout.splitlines()]
    assert [rec["top"] for rec in recs] == expected


def test_camera_on_a_video_records_and_refuses_to_overwrite(tiny_models, tmp_path):
    import cv2

    video = _video(tmp_path / "v.avi", n=8)
    out, log = tmp_path / "out.avi", tmp_path / "f.jsonl"
    r = _camera([tiny_models["int8"], "--source", video, "--headless", "--record", out, "--log", log, "--frames", 5])
    assert r.exit_code == 0, r.output
    assert "frames" in r.stdout and "invoke" in r.stdout
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    assert len(_read_log(log)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl", "out.avi", "v.avi"]  # no temp files left

    before = log.read_bytes()
    again = _camera([tiny_models["int8"], "--source", video, "--headless", "--log", log])
    assert again.exit_code == 2 and "--overwrite" in again.output and log.read_bytes() == before
    forced = _camera([tiny_models["int8"], "--source", video, "--headless", "--log", log, "--overwrite"])
    assert forced.exit_code == 0 and len(_read_log(log)) == 8


def test_camera_source_failing_mid_run_exits_1_with_summary_and_log(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setattr(cam, "open_source", lambda spec: FakeSource(n=100, fail_after=3, camera_index=True))
    log = tmp_path / "f.jsonl"
    r = _camera([tiny_models["int8"], "--source", "0", "--headless", "--log", log, "--json"])
    assert r.exit_code == 1
    summary = json.loads(r.stdout)
    assert summary["frames"] == 3 and summary["ended"] == "source failed"
    assert summary["message"] in r.stderr
    assert "stopped returning frames" in r.stderr and "picamera2" in r.stderr
    assert [rec["frame"] for rec in _read_log(log)] == [0, 1, 2]


@pytest.mark.parametrize("args, words", [
    (["{int8}", "--source", "{missing}"], "no such file"),
    (["{int8}", "--source", "{tmp}", "--record", "{tmp}/out.txt"], "--record"),
    (["{int8}", "--source", "{tmp}", "--log", "{tmp}/nodir/f.jsonl"], "does not exist"),
    (["{missing}", "--source", "{tmp}"], "no such file"),
    (["{int8}", "--source", "{tmp}/nothing*.png"], "no files match"),
    (["{int8}", "--source", "{tmp}", "--log", "{tmp}/o.avi", "--record", "{tmp}/o.avi"], "both name"),
])
def test_camera_bad_input_is_one_clear_line(tiny_models, tmp_path, args, words):
    fill = {"int8": tiny_models["int8"], "missing": tmp_path / "missing.mp4", "tmp": tmp_path}
    r = _camera([a.format(**fill) for a in args] + ["--headless"])
    assert r.exit_code in (1, 2)
    assert words in r.output and "Traceback" not in r.output


def test_camera_and_bench_help():
    for cmd in ("camera", "bench"):
        r = CliRunner().invoke(main, [cmd, "--help"])
        assert r.exit_code == 0 and "ms" in r.output


@pytest.mark.parametrize("size", [28, 96, 224])
def test_camera_frame_shrink_stays_an_area_average(size):
    """A 640x480 frame centre-cropped to a model's size (halved by 2x2 block means, then INTER_LINEAR for the last
    factor below 2, for speed) stays within a few grey levels of one direct INTER_AREA resize on a smooth,
    real-looking image, and averages a 1-pixel checkerboard to flat grey as an area average does, where a direct
    INTER_LINEAR aliases it into stripes."""
    import cv2

    from edgecnn.config import Preprocessing
    from edgecnn.preprocess import to_pixels

    yy, xx = np.mgrid[0:480, 0:640]
    frame = (127 + 60 * np.sin(xx / 37.0) + 60 * np.cos(yy / 23.0)).astype(np.uint8)
    frame = np.dstack([frame, frame // 2, 255 - frame])
    got = to_pixels(frame, Preprocessing(size, size, 3, resize="center-crop"), order="bgr").astype(int)
    direct = cv2.resize(frame[:, 80:560], (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    assert got.shape == (size, size, 3)
    assert np.abs(got - direct).mean() <= 1.5 and np.abs(got - direct).max() <= 6
    board = ((xx + yy) % 2 * 255).astype(np.uint8)
    flat = to_pixels(board, Preprocessing(size, size, 1, resize="center-crop"))
    assert flat.min() >= 126 and flat.max() <= 129
    aliased = cv2.resize(board[:, 80:560], (size, size), interpolation=cv2.INTER_LINEAR)
    assert aliased.max() - aliased.min() > 100


def test_stream_that_ends_is_a_failed_source_with_the_frames_so_far(tmp_path):
    """A real OpenCV capture read as a live stream (a video file standing in for an RTSP camera): the reader thread
    keeps the newest frame; when the stream stops, the loop gives up after a few failed reads."""
    video = _video(tmp_path / "v.avi", n=20)
    reader = cam.LatestFrameReader(cam.OpenCVSource(str(video), live=True), timeout_s=5)
    log = FrameLog(tmp_path / "f.jsonl")
    try:
        res = run_loop(reader, FakeClassifier(lambda: time.sleep(0.002)), LoopOptions(max_failures=3), log=log)
    finally:
        reader.close()
        log.close()
    assert res.failed and "stopped returning frames" in res.message
    frames = [r["frame"] for r in _read_log(tmp_path / "f.jsonl")]
    assert len(frames) == res.frames >= 1
    assert all(b > a for a, b in zip(frames, frames[1:])) and frames[-1] <= 19
    assert res.frames + res.dropped <= reader.captured == 20


def test_show_without_a_display_runs_headless_with_a_warning(tiny_models, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = _video(tmp_path / "v.avi", n=3)
    r = _camera([tiny_models["int8"], "--source", video, "--show", "--json"])
    assert r.exit_code == 0, r.output
    assert "no reachable display" in r.stderr and json.loads(r.stdout)["frames"] == 3
    # DISPLAY set but nothing listening (an SSH session without X forwarding): Qt would abort; we run headless.
    monkeypatch.setenv("DISPLAY", ":987")
    r = _camera([tiny_models["int8"], "--source", video, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == 3


def test_display_probe():
    import socket

    from edgecnn.loop import display_available

    assert not display_available({})
    assert not display_available({"DISPLAY": "garbage"})
    with socket.socket() as server:  # an "X server" on TCP port 6000 + n
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        if port > 6000:
            assert display_available({"DISPLAY": f"127.0.0.1:{port - 6000}.0"})
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    if free > 6000:
        assert not display_available({"DISPLAY": f"127.0.0.1:{free - 6000}"})


def test_camera_blocked_inside_its_driver_counts_timeouts_as_failed_reads():
    """A capture that never returns (a V4L2 read stuck in the driver): each read times out as a failure, the loop
    ends as a failed source, and close() neither hangs nor releases the capture under the blocked thread."""
    release = threading.Event()

    class Stuck(FakeSource):
        def read(self):
            release.wait(10)
            return None

    src = Stuck(camera_index=True)
    reader = cam.LatestFrameReader(src, timeout_s=0.05)
    res = run_loop(reader, FakeClassifier(), LoopOptions(max_failures=3))
    reader.close()
    assert res.failed and res.failed_reads == 3 and "picamera2" in res.message
    assert not src.closed  # still inside read(): left alone
    release.set()


def test_slideshow_skips_an_unreadable_image_and_says_so(tiny_models, image_dir, tmp_path):
    log = tmp_path / "f.jsonl"
    r = _camera([tiny_models["int8"], "--source", image_dir, "--headless", "--log", log, "--json"])
    assert r.exit_code == 1  # like classify: results for the good images, exit 1 for the bad one
    assert json.loads(r.stdout)["frames"] == 2 and json.loads(r.stdout)["failed_reads"] == 1
    assert "broken.jpg" in r.stderr and "Traceback" not in r.output
    assert [rec["frame"] for rec in _read_log(log)] == [1, 2]  # frame 0 is broken.jpg (name order)


def test_picamera2_source_with_a_stand_in_module(tiny_models, monkeypatch, tmp_path):
    """open_source('picamera2') drives the picamera2 API (configure XRGB8888, start, capture_array, stop, close)
    through a stand-in module, and the loop classifies its 4-channel frames."""
    import sys
    import types

    from edgecnn.runtime import Classifier

    calls = []
    bgr = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    class Picamera2:
        def create_preview_configuration(self, main):
            calls.append(("config", main["format"], main["size"]))
            return main

        def configure(self, cfg):
            calls.append("configure")

        def start(self):
            calls.append("start")

        def capture_array(self, stream="main"):
            time.sleep(0.001)
            return np.concatenate([bgr, np.zeros((480, 640, 1), np.uint8)], axis=2)

        def stop(self):
            calls.append("stop")

        def close(self):
            calls.append("close")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    clf = Classifier(tiny_models["int8"])
    src = cam.open_source("picamera2")
    log = FrameLog(tmp_path / "f.jsonl")
    try:
        res = run_loop(src, clf, LoopOptions(max_frames=3, top_k=3), log=log)
    finally:
        src.close()
        log.close()
    assert res.frames == 3 and calls[:3] == [("config", "XRGB8888", (640, 480)), "configure", "start"]
    assert calls[-2:] == ["stop", "close"]
    expected = [p.to_dict() for p in clf.classify(bgr, 3, order="bgr").top]
    assert all(r["top"] == expected for r in _read_log(tmp_path / "f.jsonl"))


def test_stalled_stream_reports_wall_and_processing_fps_apart():
    """Time spent waiting on failed reads lowers the wall FPS but not the processing FPS; the summary names both."""
    import time as _time

    from edgecnn.report import camera_summary_text

    class Stalling(FakeSource):
        def read(self):
            if self.reads % 2 == 1:  # every other read: a 50 ms stall that returns nothing
                self.reads += 1
                _time.sleep(0.05)
                return None
            return super().read()

    res = run_loop(Stalling(n=12), FakeClassifier(), LoopOptions(max_failures=2))
    s = res.summary(FakeClassifier())
    assert res.failed_reads >= 5 and s["frames"] == 6
    assert s["processing_fps"] > 3 * s["wall_fps"] and s["fps"] == s["wall_fps"]
    assert s["wall_fps"] == pytest.approx(6 / res.wall_s, rel=0.01)
    text = camera_summary_text(s)
    assert f"wall FPS {s['wall_fps']:.1f}" in text and f"processing FPS {s['processing_fps']:.1f}" in text
