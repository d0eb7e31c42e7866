"""Frame sources behind one interface: camera index, video file, RTSP/HTTP stream, image folder/glob, picamera2.

Every source has ``read() -> Frame | None`` (None: no frame this time, e.g. a camera that returned nothing),
raises :class:`EndOfSource` when a finite source is exhausted, and has ``close()``. Attributes: ``description``
(for messages), ``live`` (a camera or stream: frames arrive whether or not we are ready), ``dropped`` (frames
captured but never processed), ``fps`` (nominal frames per second, 0.0 when unknown).

Live sources are wrapped in :class:`LatestFrameReader`, a background thread that keeps only the newest frame, so the
classifier never works on stale, buffered frames; frames it overwrites are counted as dropped. File sources (video
files, image folders) are read in order in the caller's thread and drop nothing.

Imports only numpy, OpenCV and the standard library; picamera2 is imported only when asked for.
"""

from __future__ import annotations

import glob
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.config import CAMERA_READ_TIMEOUT_S as READ_TIMEOUT_S
from edgecnn.errors import ImageError, SourceError
from edgecnn.opencv import import_cv2, quiet_logs

#: Seconds the reader thread sleeps after a failed capture before trying again (keeps a dead camera from
#: spinning a core).
RETRY_PAUSE_S = 0.02
#: picamera2 frame size (width, height) in pixels, and its pixel format (bytes B, G, R, X per pixel).
PICAMERA2_SIZE = (640, 480)
PICAMERA2_FORMAT = "XRGB8888"
#: Kinds of source :func:`open_source` understands, for messages.
SOURCE_KINDS = "a camera index (0), a video file, an rtsp:// or http(s):// URL, an image folder or glob, or picamera2"


class EndOfSource(Exception):
    """A finite source (video file, image folder) has no more frames."""


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: (H, W, 3) uint8 in channel ``order``, or (H, W, 4) uint8 (picamera2 XRGB8888: bytes B, G, R, X,
            ``order`` "bgr"), or (H, W) uint8 gray.
        order: "bgr" or "rgb": the channel order of ``image``, passed on to the shared preprocessing.
        index: position in the source, 0-based (gaps mean frames were dropped).
        t_capture: ``time.perf_counter()`` seconds when the frame was captured.
        name: where it came from when that is a file (slideshows), else None.
    """

    image: np.ndarray
    order: str
    index: int
    t_capture: float
    name: str | None = None


# ----------------------------------------------------------------------------------------------- sources
class OpenCVSource:
    """A cv2.VideoCapture: camera index, video file or network stream. Frames are (H, W, 3) uint8 BGR.

    Args:
        target: camera index (int) or file path / URL (str).
        live: True for cameras and streams, False for files (read in order; a failed read is the end of the file).
    Raises:
        SourceError: OpenCV cannot open it.
    """

    def __init__(self, target: int | str, live: bool):
        cv2 = import_cv2()
        self.live = live
        self.is_camera_index = isinstance(target, int)
        self.description = f"camera {target}" if self.is_camera_index else str(target)
        with quiet_logs(cv2):  # we report failure in one line below
            self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(f"{self.description}: cannot open (expected {SOURCE_KINDS})")
        if live:
            # Ask the driver for a 1-frame queue; backends that ignore it are covered by LatestFrameReader anyway.
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not live else 0
        self.dropped = 0
        self._next = 0

    def read(self) -> Frame | None:
        """The next frame; None when a live source returned nothing. Raises EndOfSource at the end of a file."""
        ok, image = self.cap.read()
        t = time.perf_counter()
        if not ok or image is None:
            if not self.live:
                raise EndOfSource
            return None
        frame = Frame(image, "bgr", self._next, t)
        self._next += 1
        return frame

    def close(self) -> None:
        self.cap.release()


class ImageFolderSource:
    """A slideshow of image files, read in order (decoded by :func:`edgecnn.preprocess.read_image`, so exactly as
    ``classify`` reads them). Frames are (H, W, 3) uint8 RGB.

    An unreadable file gives a failed read (None) and is remembered in ``errors``; the slideshow goes on.
    """

    live = False
    fps = 0.0

    def __init__(self, paths: list[Path], description: str):
        if not paths:
            raise SourceError(f"{description}: no image files found (expected {SOURCE_KINDS})")
        self.paths = list(paths)
        self.description = description
        self.frame_count = len(self.paths)
        self.dropped = 0
        self.errors: list[str] = []
        self._next = 0

    def read(self) -> Frame | None:
        from edgecnn.preprocess import read_image

        if self._next >= len(self.paths):
            raise EndOfSource
        i, path = self._next, self.paths[self._next]
        self._next += 1
        try:
            image = read_image(path)
        except ImageError as e:
            self.errors.append(str(e))
            return None
        return Frame(image, "rgb", i, time.perf_counter(), str(path))

    def close(self) -> None:
        pass


class Picamera2Source:
    """The Raspberry Pi camera through picamera2 (libcamera), the way Raspberry Pi OS supports CSI cameras.

    Frames are (H, W, 4) uint8 XRGB8888, i.e. bytes B, G, R, X (order "bgr"); the shared preprocessing drops X.

    Args:
        size: (width, height) in pixels of the main stream.
    Raises:
        SourceError: picamera2 is not installed or no camera is attached.
    """

    live = True

    def __init__(self, size: tuple[int, int] = PICAMERA2_SIZE):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError("picamera2: not installed (on Raspberry Pi OS: sudo apt install python3-picamera2, and "
                              "create the venv with --system-site-packages)") from None
        self.description = "picamera2"
        try:
            self.cam = Picamera2()
            self.cam.configure(self.cam.create_preview_configuration(main={"format": PICAMERA2_FORMAT,
                                                                           "size": tuple(size)}))
            self.cam.start()
        except Exception as e:  # picamera2 raises IndexError/RuntimeError variously when no camera is attached
            raise SourceError(f"picamera2: cannot start the camera ({e})") from None
        self.fps = 0.0
        self.dropped = 0
        self._next = 0

    def read(self) -> Frame | None:
        try:
            image = self.cam.capture_array("main")
        except Exception:  # a capture failure is a failed read, counted by the caller
            return None
        frame = Frame(image, "bgr", self._next, time.perf_counter())
        self._next += 1
        return frame

    def close(self) -> None:
        try:
            self.cam.stop()
            self.cam.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------------- live reader
class LatestFrameReader:
    """Reads a live source in a background thread and keeps only the newest frame.

    ``read()`` returns the newest frame not yet returned, waiting for one if needed; frames captured while the
    consumer was busy are overwritten and counted in ``dropped``. Failed captures are passed on as None (one per
    burst of failures), so the caller can give up after a few.

    Args:
        source: an object with ``read() -> Frame | None`` and ``close()`` (e.g. :class:`OpenCVSource`).
        timeout_s: seconds ``read()`` waits for a frame before returning None.
    """

    live = True

    def __init__(self, source, timeout_s: float = READ_TIMEOUT_S):
        self.source = source
        self.description = source.description
        self.fps = getattr(source, "fps", 0.0)
        self.timeout_s = timeout_s
        self.dropped = 0
        self.captured = 0
        self._frame: Frame | None = None
        self._failed = False
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="edgecnn-capture", daemon=True)
        self._thread.start()

    def __getattr__(self, name):  # e.g. is_camera_index of the wrapped source
        return getattr(self.source, name)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except EndOfSource:
                frame, end = None, True
            except Exception as e:  # surfaced to the consumer by read()
                with self._cond:
                    self._error = e
                    self._cond.notify_all()
                return
            else:
                end = False
            with self._cond:
                if frame is None:
                    self._failed = True
                else:
                    self._failed = False
                    self.captured += 1
                    if self._frame is not None:
                        self.dropped += 1
                    self._frame = frame
                self._cond.notify_all()
            if end:
                with self._cond:
                    self._ended = True
                    self._cond.notify_all()
                return
            if frame is None:
                self._stop.wait(RETRY_PAUSE_S)

    def read(self) -> Frame | None:
        """The newest unread frame, or None after a failed capture or ``timeout_s`` without a frame.

        Raises:
            EndOfSource: the source ended and its last frame was already returned.
            the exception that ended the reader thread, if any.
        """
        with self._cond:
            if self._frame is None and not (self._failed or self._ended or self._error):
                self._cond.wait(self.timeout_s)
            if self._error is not None:
                raise self._error
            frame, self._frame = self._frame, None
            if frame is None and self._ended:
                raise EndOfSource
            if frame is None:
                self._failed = False
            return frame

    def close(self) -> None:
        """Stop the reader thread and close the source. A thread still blocked inside the driver's read (a V4L2
        camera can block for seconds) is left to end with the process: releasing a capture while another thread
        reads it is not safe in OpenCV."""
        self._stop.set()
        self._thread.join(timeout=max(1.0, self.timeout_s))
        if not self._thread.is_alive():
            self.source.close()


# ----------------------------------------------------------------------------------------------- factory
def _is_image_file(p: Path) -> bool:
    from edgecnn.images import is_image_path

    return p.is_file() and is_image_path(p)


def open_source(spec: str, timeout_s: float = READ_TIMEOUT_S):
    """Open a frame source from its command-line spelling.

    ``picamera2`` -> :class:`Picamera2Source`; an integer -> camera index; ``scheme://...`` -> network stream
    (both live, wrapped in :class:`LatestFrameReader`); a folder, glob pattern or image file -> slideshow
    (:class:`ImageFolderSource`); any other existing file -> video file (:class:`OpenCVSource`, read in order).

    Raises:
        SourceError: nothing to open at ``spec``.
    """
    from edgecnn.images import expand_images

    spec = str(spec).strip()
    if spec == "picamera2":
        return LatestFrameReader(Picamera2Source(), timeout_s)
    if spec.isdigit():
        return LatestFrameReader(OpenCVSource(int(spec), live=True), timeout_s)
    if "://" in spec:
        return LatestFrameReader(OpenCVSource(spec, live=True), timeout_s)
    p = Path(spec)
    if not p.exists() and glob.has_magic(spec) and not glob.glob(spec, recursive=True):
        raise SourceError(f"{spec}: no files match this pattern (expected {SOURCE_KINDS})")
    if p.is_dir() or glob.has_magic(spec) or _is_image_file(p):
        return ImageFolderSource(expand_images([spec]), spec)
    if p.is_file():
        return OpenCVSource(spec, live=False)
    raise SourceError(f"{spec}: no such file or folder (expected {SOURCE_KINDS})")


def failure_hint(source) -> str:
    """Advice for a source that opened but returns no frames: a camera index on a Raspberry Pi is most often the
    CSI camera, which plain OpenCV (V4L2) opens but cannot read; picamera2 can."""
    if getattr(source, "is_camera_index", False):
        return ("; if this is a Raspberry Pi camera module (CSI), OpenCV cannot read it: use --source picamera2")
    return ""
