"""Smoothing and events: from flickering per-frame scores to a steady top-1 and a sparse stream of changes.

* :class:`ScoreSmoother` averages the score vectors of the last N frames (a moving average; per-frame flicker
  between two close classes is the first complaint about live classifiers).
* :class:`EventDetector` turns the (smoothed) ranked predictions of each frame into :class:`Event` s: an event is
  emitted when the top-1 class changes and the new class holds for ``hold`` consecutive frames at or above
  ``threshold``.
* :class:`SmoothedClassifier` puts the smoother into a classifier's postprocess stage, so the overlay, the log, the
  web view and the events all see the smoothed ranking.

Pure: numpy and the standard library, no clocks (callers pass frame indices and times), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.config import EventOptions


class ScoreSmoother:
    """Moving average of the last ``n`` score vectors.

    Args:
        n: frames averaged (>= 1; 1 returns each vector unchanged).
    Raises:
        ValueError: ``n`` < 1, or a vector whose length differs from the first one's.
    """

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"smoothing window is {n} frames, expected >= 1")
        self.n = n
        self._buf: np.ndarray | None = None
        self._count = 0

    def push(self, scores: np.ndarray) -> np.ndarray:
        """Add one (C,) float score vector; returns the (C,) float32 mean over the last min(n, frames seen)
        vectors."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if self.n == 1:
            return scores
        if self._buf is None:
            self._buf = np.zeros((self.n, scores.size), np.float32)
        if scores.size != self._buf.shape[1]:
            raise ValueError(f"score vector has {scores.size} entries, earlier ones had {self._buf.shape[1]}")
        self._buf[self._count % self.n] = scores
        self._count += 1
        return self._buf[:min(self._count, self.n)].mean(axis=0)


@dataclass(frozen=True)
class Event:
    """The top-1 class changed and held: the camera now sees ``label``.

    Attributes:
        label: class label (the output index as a string when the model has no labels).
        index: output index of the class.
        score: its (smoothed) score, 0..1 for probabilities, on the frame that completed the hold.
        frame: index of that frame in the source.
        t: Unix time (seconds) of that frame's result.
        previous: label of the state before (a class, whether or not it was an event), None when that was
            "nothing above threshold" or the start.
    """

    label: str
    index: int
    score: float
    frame: int
    t: float
    previous: str | None = None

    def to_dict(self) -> dict:
        """``{"event": "change", "label", "index", "score", "frame", "t", "previous"}`` (JSON-ready)."""
        return {"event": "change", "label": self.label, "index": self.index, "score": round(float(self.score), 6),
                "frame": self.frame, "t": round(self.t, 6), "previous": self.previous}


def _name(prediction) -> str:
    return prediction.label if prediction.label is not None else str(prediction.index)


class EventDetector:
    """Emits an :class:`Event` when the top-1 class changes and holds.

    Per frame the candidate is the top-1 prediction if its score is at least ``threshold``, else "nothing". A
    candidate that stays the same for ``hold`` consecutive frames becomes the current state; a new state that is a
    class is an event, unless ``only`` is given and the class is not in it. "Nothing" can become the state too
    (without an event), so a class that leaves and comes back is a new event.

    Args:
        options: :class:`edgecnn.config.EventOptions` (hold, threshold, only; smooth is applied by the classifier).
    """

    def __init__(self, options: EventOptions = EventOptions()):
        self.options = options
        self.events = 0
        self._candidate: tuple[int, str] | None = None
        self._run = 0
        self._state: tuple[int, str] | None = None

    def update(self, top: list, frame: int, t: float) -> Event | None:
        """Feed one frame's ranked predictions (best first, :class:`edgecnn.runtime.Prediction`); returns the event
        this frame completes, or None.

        Args:
            top: the frame's top-k, best first (may be empty).
            frame: the frame's index in the source.
            t: Unix time of the frame's result, seconds.
        """
        best = top[0] if top and top[0].score >= self.options.threshold else None
        candidate = (best.index, _name(best)) if best is not None else None
        if candidate == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = candidate, 1
        if self._run != self.options.hold or candidate == self._state:
            return None
        previous, self._state = self._state, candidate
        if candidate is None:
            return None
        only = self.options.only
        if only is not None and candidate[1] not in only and str(candidate[0]) not in only:
            return None
        self.events += 1
        return Event(candidate[1], candidate[0], float(best.score), frame, t,
                     previous[1] if previous is not None else None)


class SmoothedClassifier:
    """A classifier whose postprocess ranks the moving average of the last ``n`` frames' scores.

    Wraps an :class:`edgecnn.runtime.Classifier` (anything with ``preprocess``, ``invoke``, ``scores(raw) -> (C,)
    float32`` and ``rank(scores, k, threshold)``); every other attribute is the wrapped classifier's.
    """

    def __init__(self, classifier, n: int):
        self.classifier = classifier
        self.smoother = ScoreSmoother(n)

    def __getattr__(self, name):
        return getattr(self.classifier, name)

    def postprocess(self, raw: np.ndarray, k: int, threshold: float) -> list:
        """Raw output -> top-k of the smoothed scores (:class:`edgecnn.runtime.Prediction` list, best first)."""
        return self.classifier.rank(self.smoother.push(self.classifier.scores(raw)), k, threshold)
