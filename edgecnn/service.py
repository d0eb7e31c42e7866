"""The camera loop as a headless service: rotation and region of interest, smoothing, events and where they go
(the ``--log``, ``--exec``, MQTT), and the live web view.

:class:`Service` is built from :class:`edgecnn.config.ServiceOptions` and plugs into :func:`edgecnn.loop.run_loop`
at three points: it wraps the frame source (rotation), wraps the classifier (region of interest in preprocess,
smoothing in postprocess, so the stage timings include them) and adds per-frame sinks (events, web view). Every
sink returns at once; slow work (running a command, encoding JPEG, talking to the broker) happens in the part's
own thread.

Imports numpy, OpenCV and the standard library; paho-mqtt only when ``--mqtt`` is given.
"""

from __future__ import annotations

import time

from edgecnn.config import ServiceOptions
from edgecnn.errors import FrameError
from edgecnn.events import EventDetector, SmoothedClassifier
from edgecnn.geometry import Roi, rotate


class RotatedSource:
    """A frame source whose frames are rotated clockwise by ``degrees`` (90, 180, 270); every other attribute is
    the wrapped source's."""

    def __init__(self, source, degrees: int):
        self.source = source
        self.degrees = degrees

    def __getattr__(self, name):
        return getattr(self.source, name)

    def read(self):
        """The wrapped source's next frame, rotated (None and EndOfSource pass through)."""
        frame = self.source.read()
        if frame is None:
            return None
        return type(frame)(rotate(frame.image, self.degrees), frame.order, frame.index, frame.t_capture, frame.name)


class RoiClassifier:
    """A classifier that sees only the region ``roi`` of each frame (cropped before its preprocess); every other
    attribute is the wrapped classifier's.

    Raises (from preprocess):
        FrameError: the region does not fit in the frame.
    """

    def __init__(self, classifier, roi: Roi):
        self.classifier = classifier
        self.roi = roi

    def __getattr__(self, name):
        return getattr(self.classifier, name)

    def preprocess(self, image, order: str):
        """Crop (H, W[, C]) uint8 ``image`` to the region, then the wrapped classifier's preprocess."""
        try:
            part = self.roi.crop(image)
        except ValueError as e:
            raise FrameError(f"--roi {e}") from None
        return self.classifier.preprocess(part, order)


def check_only(only, labels, num_classes: int) -> None:
    """Check that every ``--only`` name is a label of the model, or an output index when it has no labels.

    Raises:
        ValueError: a name that is neither, listing what is known.
    """
    known = {str(i) for i in range(num_classes)} | {lab for lab in (labels or []) if lab is not None}
    unknown = sorted(set(only) - known)
    if unknown:
        names = [lab for lab in (labels or []) if lab is not None] or [f"0..{num_classes - 1}"]
        raise ValueError(f"{', '.join(unknown)}: not a class of this model (expected one of {', '.join(names)})")


class Service:
    """The service parts of one camera run.

    Args:
        options: :class:`edgecnn.config.ServiceOptions`.
        log: the run's :class:`edgecnn.loop.FrameLog` (events are written to it too), or None.
        warn: called with one line of text about a problem a part ran into (from any thread); None = silent.
    Raises:
        ValueError: an ``--exec`` command that cannot run (see :func:`edgecnn.exechook.split_command`).
    """

    def __init__(self, options: ServiceOptions = ServiceOptions(), log=None, warn=None):
        self.options = options
        self.roi = Roi(*options.roi) if options.roi is not None else None
        self.log = log
        self.warn = warn
        self.detector = EventDetector(options.events)
        self.exec = None
        if options.exec_command:
            from edgecnn.exechook import ExecHook

            self.exec = ExecHook(options.exec_command, options.exec_timeout_s, warn)
        self.latest_event: dict | None = None
        self.sinks: list = [self]

    # ------------------------------------------------------------------ loop plumbing
    def source(self, source):
        """``source`` with ``--rotate`` applied."""
        return RotatedSource(source, self.options.rotate) if self.options.rotate else source

    def classifier(self, classifier):
        """``classifier`` with ``--roi`` and ``--smooth`` applied."""
        if self.roi is not None:
            classifier = RoiClassifier(classifier, self.roi)
        if self.options.events.smooth > 1:
            classifier = SmoothedClassifier(classifier, self.options.events.smooth)
        return classifier

    def on_frame(self, frame, top, result) -> None:
        """Per processed frame (loop thread): detect an event and hand it to the log, the command and MQTT."""
        event = self.detector.update(top, frame.index, time.time())
        if event is None:
            return
        record = event.to_dict()
        self.latest_event = record
        if self.log is not None:
            self.log.write_event(record)
        if self.exec is not None:
            self.exec.submit(record)

    # ------------------------------------------------------------------ reporting and shutdown
    def counts(self) -> dict:
        """What the service did so far: ``{"events": n, "last_event": event or None, "exec": {...} (with
        --exec)}``."""
        out = {"events": self.detector.events, "last_event": self.latest_event}
        if self.exec is not None:
            out["exec"] = self.exec.counts()
        return out

    def close(self) -> None:
        """Stop every part (runs a pending ``--exec`` event first)."""
        if self.exec is not None:
            self.exec.close()
