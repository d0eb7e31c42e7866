"""The camera loop: capture -> preprocess -> invoke -> postprocess -> render (overlay, window, recording) -> log,
with every stage timed per frame and a summary at the end.

:func:`run_loop` is the testable core: it takes any source (``read() -> Frame | None``, raising
:class:`edgecnn.sources.EndOfSource` at the end; see :mod:`edgecnn.sources`) and any classifier with the
:class:`edgecnn.runtime.Classifier` stages ``preprocess(image, order)``, ``invoke(tensor)`` and
``postprocess(raw, k, threshold)``. Window, recording and the per-frame log are optional sinks around it.

Imports numpy, OpenCV (only for the window and the recording) and the standard library; never TensorFlow.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from edgecnn.config import DEFAULT_RECORD_FPS, LATENCY_WINDOW_FRAMES, RECORD_MIN_FREE_BYTES, LoopOptions
from edgecnn.errors import WriteError
from edgecnn.opencv import has_gui, import_cv2, quiet_logs
from edgecnn.outputs import LineAppender, PendingFile
from edgecnn.sources import EndOfSource, failure_hint
from edgecnn.stats import RecentSamples
from edgecnn.stop import StopHold, signal_name

#: Timed stages of one frame, in order; ``total`` (capture start to render end) is added in the summary.
STAGES = ("capture", "preprocess", "invoke", "postprocess", "render")
#: Weight of the newest frame in the FPS estimate shown on the overlay (exponential moving average).
FPS_SMOOTHING = 0.1
#: Window title.
WINDOW_NAME = "edgecnn"


def display_available(env: dict | None = None) -> bool:
    """True when an OpenCV window can open: any non-Linux desktop; on Linux a Wayland socket that exists or an X
    server that accepts a connection on ``$DISPLAY`` (a set but unreachable DISPLAY, common over SSH, would make
    Qt abort the whole process).

    ``DISPLAY`` is ``[host]:n[.screen]``: a local server listens on ``/tmp/.X11-unix/Xn``, a remote one (or SSH X
    forwarding) on TCP port 6000 + n (X Window System protocol, "Connection Setup").
    """
    import re
    import socket
    import sys

    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return True
    wayland = env.get("WAYLAND_DISPLAY")
    if wayland and os.path.exists(os.path.join(env.get("XDG_RUNTIME_DIR", "/"), wayland)):
        return True
    m = re.fullmatch(r"(?P<host>[^:]*):(?P<n>\d+)(?:\.\d+)?", env.get("DISPLAY", ""))
    if not m:
        return False
    host, n = m.group("host"), int(m.group("n"))
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(f"/tmp/.X11-unix/X{n}")
        else:
            socket.create_connection((host, 6000 + n), timeout=0.5).close()
    except OSError:
        return False
    return True


def window_problem(env: dict | None = None) -> str | None:
    """Why an OpenCV window cannot open here (no reachable display, see :func:`display_available`; or an OpenCV
    built without a GUI, such as ``opencv-python-headless``), or None when it can."""
    env = os.environ if env is None else env
    if not display_available(env):
        return (f"no reachable display (DISPLAY={env.get('DISPLAY', '')!r}, "
                f"WAYLAND_DISPLAY={env.get('WAYLAND_DISPLAY', '')!r})")
    if not has_gui(import_cv2()):
        return ("this OpenCV has no GUI (opencv-python-headless); for a window use opencv-python or apt's "
                "python3-opencv instead")
    return None


@dataclass
class LoopResult:
    """What a run of :func:`run_loop` measured.

    Attributes:
        frames: frames processed; wall_s: seconds from the first read to the end.
        dropped: frames the source captured but the loop never processed (live sources only).
        failed_reads: reads that returned no frame, in total.
        ended: why the loop stopped: "frames", "duration", "end of source", "quit", "interrupted" (Ctrl-C),
            "stopped by SIGTERM" / "stopped by SIGHUP", "source failed", "write failed" (--record / --log).
        message: for "source failed" and "write failed", what happened (for the user).
        window: processed frames whose durations are kept for percentiles (the most recent ones).
        stages_ms: per stage of :data:`STAGES` plus "total", the durations (ms) of the processed frames
            (:class:`edgecnn.stats.RecentSamples`: exact count/sum/max of all, the last ``window`` kept).
        frame_age_ms: the same for capture time to result (after postprocess), ms.
    """

    frames: int = 0
    wall_s: float = 0.0
    dropped: int = 0
    failed_reads: int = 0
    ended: str = ""
    message: str | None = None
    window: int = LATENCY_WINDOW_FRAMES
    stages_ms: dict[str, RecentSamples] | None = None
    frame_age_ms: RecentSamples | None = None

    def __post_init__(self) -> None:
        if self.stages_ms is None:
            self.stages_ms = {s: RecentSamples(self.window) for s in (*STAGES, "total")}
        if self.frame_age_ms is None:
            self.frame_age_ms = RecentSamples(self.window)

    @property
    def failed(self) -> bool:
        """True when the source stopped giving frames or an output could not be written (the CLI exits non-zero)."""
        return self.ended in ("source failed", "write failed")

    def summary(self, classifier, source_description: str | None = None) -> dict:
        """The JSON-ready summary.

        Keys: frames, wall_fps (frames / wall_s: everything, including time lost to failed reads and pauses),
        processing_fps (frames / the sum of per-frame totals: the rate while frames arrive), fps (= wall_fps, kept
        for scripts), dropped, failed_reads, stages_ms {capture, preprocess, invoke,
        postprocess, render, total: {p50, p90, p99, mean, max}}, frame_age_ms {same}, latency_window_frames (the
        window), percentile_frames (the frames p50/p90/p99 cover: the most recent min(frames, window); mean and max
        cover every frame), backend, threads, model, source, ended, message (what went wrong when ended is "source
        failed", else None), wall_s. Statistics are None when no frame was processed.
        """
        def stats(values: RecentSamples) -> dict | None:
            if not values.count:
                return None
            s = values.stats()
            return {k: round(s[k], 4) for k in ("p50", "p90", "p99", "mean", "max")}

        busy_s = self.stages_ms["total"].total / 1e3
        wall_fps = round(self.frames / self.wall_s, 3) if self.wall_s > 0 else 0.0
        return {
            "frames": self.frames,
            "fps": wall_fps,
            "wall_fps": wall_fps,
            "processing_fps": round(self.frames / busy_s, 3) if busy_s > 0 else 0.0,
            "dropped": self.dropped,
            "failed_reads": self.failed_reads,
            "stages_ms": {k: stats(v) for k, v in self.stages_ms.items()},
            "frame_age_ms": stats(self.frame_age_ms),
            "latency_window_frames": self.window,
            "percentile_frames": len(self.stages_ms["total"]),
            "backend": classifier.backend.name,
            "threads": classifier.threads,
            "model": str(classifier.path),
            "source": source_description,
            "ended": self.ended,
            "message": self.message,
            "wall_s": round(self.wall_s, 3),
        }


# ----------------------------------------------------------------------------------------------- sinks
class FrameLog:
    """``--log``: one JSON object per processed frame (and per event), one per line, under its final name from the
    start: each line is written out as soon as its frame is done (``tail -f`` follows a running service; a run that
    stops early, even by SIGKILL or a power loss, keeps the lines already written). Written through
    :class:`edgecnn.outputs.LineAppender`: whole lines only; after a failed write (disk full, ...) the file is cut
    back to its last complete line. The caller checks it may be written (:func:`edgecnn.outputs.refuse_existing`).

    Raises:
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._out = LineAppender(self.path)

    def write(self, frame_index: int, t: float, top: list, stage_ms: dict[str, float]) -> None:
        """Write ``{"frame", "t" (s since the loop started, at the result), "top": [{"index", "label", "score"}],
        "ms": {stage: ms}}``.

        Raises:
            WriteError: the line cannot be written (disk full, ...); the file keeps the complete lines before it.
        """
        rec = {"frame": frame_index, "t": round(t, 6), "top": [p.to_dict() for p in top],
               "ms": {k: round(v, 4) for k, v in stage_ms.items()}}
        self._out.write_line(json.dumps(rec, separators=(",", ":")))

    def write_event(self, event: dict) -> None:
        """Write an event (:meth:`edgecnn.events.Event.to_dict`: has ``"event"``, and ``"t"`` in Unix seconds)."""
        self._out.write_line(json.dumps(event, separators=(",", ":")))

    def close(self) -> None:
        """Close the file (it already holds every complete line written)."""
        self._out.close()


class Recorder:
    """``--record``: annotated frames into a video (OpenCV VideoWriter, codec by suffix: .mp4 mp4v, .avi MJPG).

    Frames go to a temporary file next to ``path`` (:class:`edgecnn.outputs.PendingFile`) that replaces ``path`` on
    :meth:`close` (a recording that never got a frame leaves nothing behind). Frames whose size differs from the
    first are resized to it.
    """

    CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() not in self.CODECS:
            raise ValueError(f"{path}: unsupported video suffix, expected one of {', '.join(self.CODECS)}")
        self.fps = fps if fps and fps > 0 else DEFAULT_RECORD_FPS
        self._writer = None
        self._size = None
        self._pending: PendingFile | None = None
        self.frames = 0

    def write(self, image) -> None:
        """Append an (H, W, 3) uint8 BGR image."""
        cv2 = import_cv2()

        if self._writer is None:
            self._pending = PendingFile(self.path)
            self._size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*self.CODECS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._pending.tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._pending.discard()
                raise OSError(f"{self.path}: OpenCV cannot write this video format here")
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1
        self._check_space()

    def _check_space(self) -> None:
        """OpenCV's VideoWriter only prints a warning when a frame cannot be written, so watch the file system:
        stop (WriteError) when less room is left than :data:`edgecnn.config.RECORD_MIN_FREE_BYTES` or two frames' worth of the
        file's growth so far."""
        tmp = self._pending.tmp
        try:
            st = os.statvfs(tmp.parent)
            size = tmp.stat().st_size
        except OSError as e:
            raise self._fail(e.strerror or str(e)) from None
        free = st.f_bavail * st.f_frsize
        if free < max(RECORD_MIN_FREE_BYTES, 2 * size / max(1, self.frames)):
            raise self._fail(f"no space left on device, {free:,} bytes free")

    def _fail(self, reason: str) -> WriteError:
        """Drop the unfinished recording and say why."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._pending is not None:
            self._pending.discard()
        return WriteError(f"{self.path}: cannot write ({reason}) after {self.frames} frames; nothing was written "
                          f"under that name")

    def close(self) -> None:
        """Finish the video and give it its name (nothing happens when no frame was written). The finished file is
        opened again and must hold every frame written; else it is deleted.

        Raises:
            WriteError: the container could not be finished or holds fewer frames than were written.
        """
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        written = count_video_frames(self._pending.tmp)
        if written < self.frames:
            raise self._fail(f"the file holds {written} of {self.frames} frames: disk full?")
        self._pending.commit()


def count_video_frames(path: str | Path) -> int:
    """Frames a video file holds by its container's index (``CAP_PROP_FRAME_COUNT``; 0 when it cannot be opened,
    e.g. an .mp4 whose index was never written)."""
    cv2 = import_cv2()
    with quiet_logs(cv2):
        cap = cv2.VideoCapture(str(path))
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
        finally:
            cap.release()


class Renderer:
    """The render stage: draw the overlay on a BGR copy of the frame, show it in a window and/or record it.

    Args:
        window: show an OpenCV window (needs a display); ``q`` or Esc in it ends the loop.
        recorder: a :class:`Recorder` or None.
        roi: an :class:`edgecnn.geometry.Roi` drawn as a rectangle, or None.
    """

    def __init__(self, window: bool = False, recorder: Recorder | None = None, roi=None):
        self.window = window
        self.recorder = recorder
        self.roi = roi
        if window:
            cv2 = import_cv2()

            cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_AUTOSIZE)

    @property
    def active(self) -> bool:
        return self.window or self.recorder is not None

    def render(self, frame, top: list, fps: float | None, invoke_ms: float | None) -> bool:
        """Draw and output one frame. Returns True when the user asked to quit (``q``/Esc in the window)."""
        from edgecnn.overlay import annotate

        image = annotate(frame.image, frame.order, top, fps, invoke_ms, self.roi)
        if self.recorder is not None:
            self.recorder.write(image)
        if self.window:
            cv2 = import_cv2()

            cv2.imshow(WINDOW_NAME, image)
            return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
        return False

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.window:
            cv2 = import_cv2()

            cv2.destroyAllWindows()


# ----------------------------------------------------------------------------------------------- loop
def run_loop(source, classifier, options: LoopOptions = LoopOptions(), renderer: Renderer | None = None,
             log: FrameLog | None = None, on_frame=None, clock=time.perf_counter, sinks=()) -> LoopResult:
    """Classify frames from ``source`` until a stop condition, timing each stage.

    Stops on ``options.max_frames`` processed frames, ``options.duration_s`` seconds, the end of a finite source,
    ``q`` in the window, Ctrl-C (KeyboardInterrupt is caught), or ``options.max_failures`` consecutive failed reads
    (``ended == "source failed"``, with a message). The caller closes the source, renderer and log.

    Per frame (ms): capture (waiting for / decoding the frame), preprocess, invoke, postprocess, render (0 without
    window and recording), total (capture start to render end); frame age: capture time to result.

    Args:
        source: frame source (see :mod:`edgecnn.sources`).
        classifier: object with preprocess/invoke/postprocess like :class:`edgecnn.runtime.Classifier`.
        renderer: optional :class:`Renderer`; log: optional :class:`FrameLog`.
        on_frame: optional callable(result_so_far) after each processed frame (e.g. a progress bar).
        sinks: objects with ``on_frame(frame, top, result_so_far)``, called in this thread after each processed
            frame (after the log); they must return at once and do slow work in their own threads (events, the web
            view, MQTT: :mod:`edgecnn.service`).
        clock: seconds clock (``time.perf_counter``; frames carry capture times from the same clock).
    Returns:
        :class:`LoopResult`.
    """
    res = LoopResult(window=options.latency_window)
    st = res.stages_ms
    cap_ms, pre_ms, inv_ms, post_ms, ren_ms, tot_ms = (st[s] for s in (*STAGES, "total"))
    render = renderer is not None and renderer.active
    failures = 0
    fps = None
    k, thr = options.top_k, options.threshold
    start = clock()
    last_end = start
    hold = StopHold()
    try:
        hold.install()
        while True:
            if options.max_frames is not None and res.frames >= options.max_frames:
                res.ended = "frames"
                break
            t0 = clock()
            if options.duration_s is not None and t0 - start >= options.duration_s:
                res.ended = "duration"
                break
            try:
                frame = source.read()
            except EndOfSource:
                res.ended = "end of source"
                break
            t1 = clock()
            if frame is None:
                failures += 1
                res.failed_reads += 1
                if failures >= options.max_failures:
                    res.ended = "source failed"
                    what = ("opened but returned no frames" if res.frames == 0
                            else f"stopped returning frames after {res.frames} processed")
                    res.message = (f"{source.description}: {what} ({failures} consecutive reads failed)"
                                   f"{failure_hint(source)}")
                    break
                continue
            failures = 0
            tensor = classifier.preprocess(frame.image, frame.order)
            t2 = clock()
            raw = classifier.invoke(tensor)
            t3 = clock()
            top = classifier.postprocess(raw, k, thr)
            t4 = clock()
            with hold:  # a frame is recorded, counted and logged together, or not at all
                quit_ = renderer.render(frame, top, fps, (t3 - t2) * 1e3) if render else False
                t5 = clock()
                cap_ms.append((t1 - t0) * 1e3)
                pre_ms.append((t2 - t1) * 1e3)
                inv_ms.append((t3 - t2) * 1e3)
                post_ms.append((t4 - t3) * 1e3)
                ren_ms.append((t5 - t4) * 1e3)
                tot_ms.append((t5 - t0) * 1e3)
                res.frame_age_ms.append((t4 - frame.t_capture) * 1e3)
                res.frames += 1
                if log is not None:
                    log.write(frame.index, t4 - start, top, {s: st[s].last for s in (*STAGES, "total")})
            for sink in sinks:
                sink.on_frame(frame, top, res)
            dt = t5 - last_end
            last_end = t5
            if dt > 0:
                fps = 1 / dt if fps is None else (1 - FPS_SMOOTHING) * fps + FPS_SMOOTHING / dt
            if on_frame is not None:
                on_frame(res)
            if quit_:
                res.ended = "quit"
                break
    except WriteError as e:  # --record / --log: disk full, ...
        res.ended, res.message = "write failed", str(e)
    except KeyboardInterrupt as e:  # Ctrl-C, and SIGTERM / SIGHUP turned into it (edgecnn.stop)
        res.ended = "interrupted" if signal_name(e) == "SIGINT" else f"stopped by {signal_name(e)}"
    finally:
        hold.uninstall()
    res.wall_s = clock() - start
    res.dropped = int(getattr(source, "dropped", 0))
    return res

