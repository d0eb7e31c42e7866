"""Explain pages for camera frames: what the camera's web view (``--serve``) answers at ``/explain``.

The camera loop's classifier reuses its input and output arrays on every frame, so explaining a frame from a web
request runs on a classifier of its own, made on the first request (a run that never asks pays nothing) with the
loop's options and one thread (the loop keeps the other cores). One page is made at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgecnn.config import ExplainOptions, RuntimeOptions
from edgecnn.explain import explain_image
from edgecnn.explain_html import render_html
from edgecnn.runtime import Classifier

#: Threads of the explaining classifier (the camera loop goes on beside it).
EXPLAIN_THREADS = 1


class FrameExplainer:
    """Makes the ``edgecnn explain`` page of a frame.

    Args:
        model_path: the camera's .tflite.
        options: the camera's :class:`edgecnn.config.RuntimeOptions` (labels, normalisation, resize rule); its
            thread count is replaced by :data:`EXPLAIN_THREADS`.
        explain_options: :class:`edgecnn.config.ExplainOptions` of the page.
    """

    def __init__(self, model_path: str | Path, options: RuntimeOptions,
                 explain_options: ExplainOptions = ExplainOptions()):
        self.model_path = Path(model_path)
        self.options = RuntimeOptions(**{**options.__dict__, "threads": EXPLAIN_THREADS})
        self.explain_options = explain_options
        self._lock = threading.Lock()
        self._classifier = None
        self._model: bytes | None = None

    def page(self, image: np.ndarray, order: str, name: str) -> bytes:
        """The page (UTF-8 HTML) for one frame.

        Args:
            image: (H, W[, C]) uint8 frame in channel ``order`` ("rgb" or "bgr"; (H, W, 4) XRGB as "bgr"), already
                rotated and cut to the region the loop classifies.
            name: how the page names the image (e.g. "frame 120 of /dev/video0").
        Raises:
            ModelError, ImageError: as :func:`edgecnn.explain.explain_image`.
        """
        with self._lock:
            if self._classifier is None:
                self._model = self.model_path.read_bytes()
                self._classifier = Classifier(self.model_path, self.options)
            expl = explain_image(self._classifier, self._model, image, name, self.explain_options, order=order)
            return render_html(expl).encode("utf-8")
