"""``--serve [HOST:]PORT``: the live web view of the camera loop, on the standard library's ThreadingHTTPServer.

Endpoints:

* ``GET /``: a small page (the annotated live image, the current top-k, FPS, per-stage p50/p90 latency, updated
  once a second by polling ``/stats.json``), readable on a phone;
* ``GET /stream.mjpg``: ``multipart/x-mixed-replace; boundary=frame`` JPEG frames, at most ``fps`` per second,
  each part with an ``X-Frame-Index`` header (the frame's index in the source, as in the ``--log``);
* ``GET /stats.json``: the ``--json`` summary of the run so far plus ``"top"`` (the newest frame's top-k);
* ``GET /healthz``: 200 ``{"status": "ok"}`` while frames arrive, 503 with the reason when none came for
  ``stale_s`` seconds, before the first frame, or after the source failed;
* ``GET /explain``: the ``edgecnn explain`` page of the newest frame (the region the loop classifies), made on
  request by an :class:`edgecnn.explain_frame.FrameExplainer` when the server has one (404 otherwise, 503 before
  the first frame).

The camera loop never waits for a client: :meth:`FrameServer.on_frame` only stores a reference to the newest frame.
One encoder thread turns the newest frame into a JPEG at most ``fps`` times a second, and only while a stream
client is connected, once for all clients; each client's thread sends the newest JPEG when it is ready for one, so
a slow client misses frames instead of slowing anyone, and a client that goes away only ends its own thread.

Imports numpy, OpenCV (JPEG encoding, drawing) and the standard library.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from edgecnn.config import SERVE_JPEG_QUALITY, SERVE_STALE_S, SERVE_STATS_MAX_AGE_S
from edgecnn.loop import LoopResult
from edgecnn.opencv import import_cv2

#: Multipart boundary of ``/stream.mjpg``.
BOUNDARY = "frame"
#: Seconds a stream client may block a write (not reading at all) before it is disconnected.
CLIENT_TIMEOUT_S = 10.0
#: Weight of the newest frame in the FPS drawn on the served image (exponential moving average of the period).
FPS_SMOOTHING = 0.1


def parse_address(text: str, default_host: str) -> tuple[str, int]:
    """``"8080"``, ``"0.0.0.0:8080"``, ``"[::1]:8080"`` -> (host, port).

    Raises:
        ValueError: no port, or a port outside 0..65535.
    """
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]") if sep else default_host
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: expected [HOST:]PORT with a port 0..65535")
    return host or default_host, number


def snapshot(result: LoopResult, elapsed_s: float) -> LoopResult:
    """A copy of a running loop's result, safe to summarise in another thread.

    Each series is copied (its buffer by one slice, atomic while the loop appends), all cut to the frames every one
    of them has, so every statistic covers the same frames (within one frame once the latency window is full).
    """
    series = [*result.stages_ms.values(), result.frame_age_ms]
    n = min(s.count for s in series)
    out = LoopResult(frames=n, wall_s=elapsed_s, dropped=int(result.dropped), failed_reads=result.failed_reads,
                     ended=result.ended or "running", message=result.message, window=result.window)
    out.stages_ms = {k: v.copy(n) for k, v in result.stages_ms.items()}
    out.frame_age_ms = result.frame_age_ms.copy(n)
    return out


class FrameServer:
    """The web view's state and threads: HTTP server, JPEG encoder, newest frame, cached stats.

    Args:
        host, port: where to listen (port 0: a free port; see :attr:`address`).
        fps: most JPEG frames per second for stream clients.
        summary: callable(LoopResult) -> the ``--json`` summary dict (called from server threads).
        roi: :class:`edgecnn.geometry.Roi` drawn on the served image, or None.
        info: extra facts shown on the page (e.g. ``{"rotate": 90}``).
        stale_s: ``/healthz`` answers 503 after this many seconds without a frame.
        explainer: a :class:`edgecnn.explain_frame.FrameExplainer` for ``/explain``, or None.
    Raises:
        OSError: the address cannot be bound (in use, no such interface).
    """

    def __init__(self, host: str, port: int, fps: float, summary, roi=None, info: dict | None = None,
                 stale_s: float = SERVE_STALE_S, explainer=None):
        self.fps = fps
        self.explainer = explainer
        self.stale_s = stale_s
        self.summary = summary
        self.roi = roi
        self.info = dict(info or {})
        self.stream_clients = 0
        self.encoded = 0
        self.sent = 0
        self._latest = None  # (frame, top, invoke_ms, fps, result, monotonic time), replaced per frame
        self._period: float | None = None
        self._start = time.perf_counter()
        self._ended: LoopResult | None = None
        self._jpeg: bytes | None = None
        self._jpeg_frame = -1
        self._jpeg_seq = 0
        self._stats: tuple[float, bytes] | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self.address = self._httpd.server_address[:2]
        self._threads = [threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.25},
                                          name="edgecnn-http", daemon=True),
                         threading.Thread(target=self._encode_loop, name="edgecnn-jpeg", daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    # ------------------------------------------------------------------ loop side: never waits
    def on_frame(self, frame, top, result) -> None:
        """Keep a reference to the newest frame (called by the loop after each frame; O(1), takes no lock)."""
        now = time.monotonic()
        last = self._latest
        if last is not None and now > last[5]:
            dt = now - last[5]  # averaged as a period: an average of 1/dt would let one short gap dominate
            self._period = dt if self._period is None else (1 - FPS_SMOOTHING) * self._period + FPS_SMOOTHING * dt
        fps = 1 / self._period if self._period else None
        self._latest = (frame, top, result.stages_ms["invoke"].last, fps, result, now)

    def ended(self, result: LoopResult) -> None:
        """The loop stopped (``/healthz`` answers 503 from now on, with the reason)."""
        self._ended = result

    # ------------------------------------------------------------------ encoder thread
    def _encode_loop(self) -> None:
        from edgecnn.overlay import annotate

        cv2 = import_cv2()

        encoded_item = None
        next_slot = time.monotonic()
        while not self._stop.is_set():
            self._stop.wait(max(0.0, next_slot - time.monotonic()))
            item = self._latest
            if item is None or item is encoded_item or self.stream_clients == 0:
                next_slot = time.monotonic() + min(0.02, 1 / self.fps)
                continue
            next_slot = time.monotonic() + 1 / self.fps
            frame, top, invoke_ms, fps, _, _ = item
            image = annotate(frame.image, frame.order, top, fps, invoke_ms, self.roi)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, SERVE_JPEG_QUALITY])
            if not ok:
                continue
            encoded_item = item
            with self._cond:
                self._jpeg, self._jpeg_frame, self._jpeg_seq = buf.tobytes(), frame.index, self._jpeg_seq + 1
                self.encoded += 1
                self._cond.notify_all()

    def next_jpeg(self, after: int, timeout_s: float = 1.0) -> tuple[bytes | None, int, int]:
        """The newest JPEG newer than sequence number ``after`` (waits up to ``timeout_s``): (jpeg or None, its
        frame's index in the source, seq)."""
        with self._cond:
            if self._jpeg_seq <= after and not self._stop.is_set():
                self._cond.wait(timeout_s)
            if self._jpeg_seq <= after:
                return None, -1, after
            return self._jpeg, self._jpeg_frame, self._jpeg_seq

    # ------------------------------------------------------------------ answers
    def stats(self) -> bytes:
        """``/stats.json`` body: the summary so far plus ``"top"``, recomputed at most every
        :data:`edgecnn.config.SERVE_STATS_MAX_AGE_S` seconds."""
        now = time.monotonic()
        cached = self._stats
        if cached is not None and now - cached[0] < SERVE_STATS_MAX_AGE_S:
            return cached[1]
        latest = self._latest
        result = self._ended if self._ended is not None else (latest[4] if latest is not None else LoopResult())
        elapsed = self._ended.wall_s if self._ended is not None else time.perf_counter() - self._start
        body = dict(self.summary(snapshot(result, elapsed)))
        body["top"] = [p.to_dict() for p in latest[1]] if latest is not None else []
        body["frame"] = latest[0].index if latest is not None else None
        body["serve"] = {"url": self.url, "stream_clients": self.stream_clients, "encoded": self.encoded,
                         "sent": self.sent, "max_fps": self.fps, "explain": self.explainer is not None, **self.info}
        data = json.dumps(body, separators=(",", ":")).encode()
        self._stats = (now, data)
        return data

    def health(self) -> tuple[int, dict]:
        """``/healthz``: (HTTP status, body)."""
        if self._ended is not None:
            what = self._ended.message if self._ended.failed else f"the loop ended ({self._ended.ended})"
            return 503, {"status": "failed" if self._ended.failed else "ended", "reason": what}
        latest = self._latest
        if latest is None:
            return 503, {"status": "starting", "reason": "no frame yet"}
        age = time.monotonic() - latest[5]
        if age > self.stale_s:
            return 503, {"status": "stalled", "reason": f"no frame for {age:.1f} s"}
        return 200, {"status": "ok", "frame": latest[0].index, "age_s": round(age, 3)}

    def explain(self) -> tuple[int, bytes, str]:
        """``/explain``: (HTTP status, body, content type): the explain page of the newest frame."""
        latest = self._latest
        if self.explainer is None:
            return 404, b'{"error": "no explain pages on this server"}', "application/json"
        if latest is None:
            return 503, b'{"error": "no frame yet"}', "application/json"
        frame = latest[0]
        image = self.roi.crop(frame.image) if self.roi is not None else frame.image
        page = self.explainer.page(image, frame.order, f"frame {frame.index}")
        return 200, page, "text/html; charset=utf-8"

    def close(self) -> None:
        """Stop serving: end the stream threads, stop the server, close the listening socket."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=2)


def _page() -> bytes:
    return resources.files("edgecnn").joinpath("serve_page.html").read_bytes()


def _handler(server: FrameServer):
    """The request handler class bound to ``server``."""

    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT_S
        server_version = "edgecnn"

        def log_message(self, format, *args):  # noqa: A002 - the stdlib's name; no per-request lines on stderr
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - the stdlib's name
            path = self.path.split("?", 1)[0]
            try:
                if path == "/":
                    self._send(200, _page(), "text/html; charset=utf-8")
                elif path == "/stats.json":
                    self._send(200, server.stats(), "application/json")
                elif path == "/healthz":
                    status, body = server.health()
                    self._send(status, json.dumps(body).encode(), "application/json")
                elif path == "/stream.mjpg":
                    self._stream()
                elif path == "/explain":
                    self._send(*server.explain())
                else:
                    self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json")
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the client went away: nothing to clean up beyond this thread
            except Exception as e:  # a bug must not look like a dropped connection
                self._send(500, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode(), "application/json")

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            with server._cond:
                server.stream_clients += 1
            try:
                seq = 0
                while not server._stop.is_set():
                    jpeg, index, seq = server.next_jpeg(seq)
                    if jpeg is None:
                        continue
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                                     f"\r\nX-Frame-Index: {index}\r\n\r\n".encode() + jpeg + b"\r\n")
                    server.sent += 1
            finally:
                with server._cond:
                    server.stream_clients -= 1
            self.close_connection = True

    return Handler

