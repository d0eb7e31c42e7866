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

from edgecnn.config import SERVE_STALE_S, ServiceOptions
from edgecnn.errors import FrameError
from edgecnn.events import EventDetector, SmoothedClassifier
from edgecnn.geometry import Roi, rotate
from edgecnn.serve import FrameServer


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


class PacedSource:
    """A frame source read at most ``fps`` times a second: each read waits for its time slot first.

    On a camera this saves CPU (the newest frame is still the one classified); on a video file or slideshow it
    plays the file at about that rate instead of as fast as possible (e.g. to try the service on a recording).
    The wait counts as capture time. Every other attribute is the wrapped source's.
    """

    def __init__(self, source, fps: float, clock=time.perf_counter, sleep=time.sleep):
        self.source = source
        self.period_s = 1.0 / fps
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None

    def __getattr__(self, name):
        return getattr(self.source, name)

    def read(self):
        """The wrapped source's next frame, no sooner than one period after the previous read's slot."""
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = max(now, self._next or now) + self.period_s
        return self.source.read()


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
    """The service parts of one camera run, around its frame source and classifier.

    Args:
        options: :class:`edgecnn.config.ServiceOptions`.
        classifier: the run's :class:`edgecnn.runtime.Classifier`.
        source: the run's frame source (:mod:`edgecnn.sources`).
        log: the run's :class:`edgecnn.loop.FrameLog` (events are written to it too), or None.
        warn: called with one line of text about a problem a part ran into (from any thread); None = silent.
        explainer: an :class:`edgecnn.explain_frame.FrameExplainer` for the web view's ``/explain``, or None.
    Attributes:
        source: the frame source to run the loop on (``--max-fps`` and ``--rotate`` applied).
        classifier: the classifier to run the loop with (``--roi`` and ``--smooth`` applied).
        sinks: the per-frame sinks for :func:`edgecnn.loop.run_loop`.
        roi: the :class:`edgecnn.geometry.Roi` to draw, or None.
    Raises:
        ValueError: an ``--exec`` command that cannot run (see :func:`edgecnn.exechook.split_command`), or a bad
            ``--mqtt`` URL.
        OSError: the ``--serve`` address cannot be bound.
        EdgecnnError: ``--mqtt`` without paho-mqtt installed.
    """

    def __init__(self, options: ServiceOptions, classifier, source, log=None, warn=None, explainer=None):
        self.options = options
        self.explainer = explainer
        self.roi = Roi(*options.roi) if options.roi is not None else None
        self.log = log
        self.warn = warn
        self.detector = EventDetector(options.events)
        self.latest_event: dict | None = None
        self._classifier, self._source_description = classifier, source.description
        self.source = self._wrap_source(source)
        self.classifier = self._wrap_classifier(classifier)
        self.exec = self.mqtt = self.server = None
        try:
            self._start_parts(str(classifier.path))
        except BaseException:
            self.close()
            raise
        self.sinks: list = [self] + ([self.server] if self.server is not None else [])

    def _start_parts(self, model: str) -> None:
        options = self.options
        if options.exec_command:
            from edgecnn.exechook import ExecHook

            self.exec = ExecHook(options.exec_command, options.exec_timeout_s, self.warn)
        if options.mqtt_url is not None:
            from edgecnn.mqtt import MqttPublisher, parse_url

            self.mqtt = MqttPublisher(parse_url(options.mqtt_url), model, options.mqtt_discovery, self.warn)
        if options.serve is not None:
            stale_s = max(SERVE_STALE_S, 3 / options.max_fps) if options.max_fps else SERVE_STALE_S
            self.server = FrameServer(*options.serve, options.serve_fps, self.summary, self.roi, {
                "rotate": options.rotate, "roi": str(self.roi) if self.roi else None,
                "all_interfaces": options.serve[0] in ("0.0.0.0", "::", "")}, stale_s, self.explainer)

    # ------------------------------------------------------------------ loop plumbing
    def _wrap_source(self, source):
        if self.options.max_fps is not None:
            source = PacedSource(source, self.options.max_fps)
        return RotatedSource(source, self.options.rotate) if self.options.rotate else source

    def _wrap_classifier(self, classifier):
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
        if self.mqtt is not None:
            self.mqtt.publish_event(record)

    # ------------------------------------------------------------------ reporting and shutdown
    def summary(self, result) -> dict:
        """The run's ``--json`` summary (:meth:`edgecnn.loop.LoopResult.summary`) plus ``"service"``
        (:meth:`counts`); also what ``/stats.json`` serves, so far."""
        return {**result.summary(self._classifier, self._source_description), "service": self.counts()}

    def finish(self, result) -> None:
        """The loop has ended with ``result`` (the web view's ``/healthz`` answers 503 from now on)."""
        if self.server is not None:
            self.server.ended(result)

    def counts(self) -> dict:
        """What the service did so far: ``{"events": n, "last_event": event or None, "exec": {...} (with --exec),
        "mqtt": {...} (with --mqtt)}``."""
        out = {"events": self.detector.events, "last_event": self.latest_event}
        if self.exec is not None:
            out["exec"] = self.exec.counts()
        if self.mqtt is not None:
            out["mqtt"] = self.mqtt.counts()
        return out

    def close(self) -> None:
        """Stop every part (runs a pending ``--exec`` event first)."""
        if self.server is not None:
            self.server.close()
        if self.mqtt is not None:
            self.mqtt.close()
        if self.exec is not None:
            self.exec.close()
