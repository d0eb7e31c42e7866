"""Drawing only: turn a frame into a displayable BGR image and draw the top-k labels, FPS and invoke time on it.

Nothing here times, captures or classifies. Imports numpy and OpenCV.
"""

from __future__ import annotations

import numpy as np

from edgecnn.opencv import import_cv2

#: Frames smaller than this height (pixels) are enlarged (nearest neighbour) before drawing, so text stays legible
#: on tiny slideshow images such as 28x28 Fashion-MNIST.
MIN_DISPLAY_HEIGHT = 360
#: Text colours (B, G, R) and the translucent panel behind the text.
TEXT_COLOUR = (255, 255, 255)
BEST_COLOUR = (80, 220, 80)
PANEL_COLOUR = (0, 0, 0)
PANEL_ALPHA = 0.55


def to_bgr(image: np.ndarray, order: str) -> np.ndarray:
    """Any frame layout -> (H, W, 3) uint8 BGR for display and recording.

    Args:
        image: (H, W) or (H, W, 1) gray, (H, W, 3) in ``order``, or (H, W, 4) whose first three channels are in
            ``order`` (picamera2 XRGB8888 with order "bgr").
        order: "bgr" or "rgb".
    Returns:
        (H, W, 3) uint8 BGR, a new contiguous array (drawing never touches the source frame).
    """
    cv2 = import_cv2()
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    rgb3 = image[:, :, :3]
    return np.ascontiguousarray(rgb3[:, :, ::-1] if order == "rgb" else rgb3).copy()


def enlarge(image: np.ndarray, min_height: int = MIN_DISPLAY_HEIGHT) -> np.ndarray:
    """Scale a small (H, W, 3) image up by an integer factor (nearest neighbour) to at least ``min_height`` rows;
    larger images are returned unchanged."""
    h = image.shape[0]
    if h >= min_height:
        return image
    f = -(-min_height // h)
    cv2 = import_cv2()
    return cv2.resize(image, (image.shape[1] * f, h * f), interpolation=cv2.INTER_NEAREST)


def caption(prediction) -> str:
    """``"label 0.93"`` for a :class:`edgecnn.runtime.Prediction` (its index when it has no label)."""
    name = prediction.label if prediction.label is not None else f"class {prediction.index}"
    return f"{name} {prediction.score:.2f}"


def draw_overlay(image: np.ndarray, top: list, fps: float | None, invoke_ms: float | None) -> np.ndarray:
    """Draw the ranked predictions (best first, best in green), FPS and invoke time onto ``image`` in place.

    Args:
        image: (H, W, 3) uint8 BGR, drawn on in place.
        top: :class:`edgecnn.runtime.Prediction` list.
        fps: frames per second processed, or None while unknown.
        invoke_ms: the model's invoke time for this frame, in ms.
    Returns:
        ``image``.
    """
    cv2 = import_cv2()
    h, w = image.shape[:2]
    scale = max(0.4, min(1.2, h / 600))
    thick = 1 if scale < 0.8 else 2
    line_h = int(30 * scale) + 4
    lines = [(caption(p), BEST_COLOUR if i == 0 else TEXT_COLOUR) for i, p in enumerate(top)] or \
        [("(nothing above threshold)", TEXT_COLOUR)]
    stats = []
    if fps is not None:
        stats.append(f"{fps:.1f} FPS")
    if invoke_ms is not None:
        stats.append(f"invoke {invoke_ms:.2f} ms")
    if stats:
        lines.append(("  ".join(stats), TEXT_COLOUR))
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t, _ in lines) + 16
    panel_h = line_h * len(lines) + 8
    x1, y1 = min(w, width), min(h, panel_h)
    roi = image[:y1, :x1]
    roi[:] = (roi * (1 - PANEL_ALPHA) + np.array(PANEL_COLOUR) * PANEL_ALPHA).astype(np.uint8)
    for i, (text, colour) in enumerate(lines):
        cv2.putText(image, text, (8, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return image


#: Colour (B, G, R) of the ``--roi`` rectangle.
ROI_COLOUR = (0, 200, 255)


def annotate(image: np.ndarray, order: str, top: list, fps: float | None, invoke_ms: float | None,
             roi=None) -> np.ndarray:
    """A frame as the user sees it (window, recording, web view): BGR, enlarged when tiny, the ``--roi``
    rectangle (when given) and the predictions drawn on it.

    Args:
        image: the frame, any layout :func:`to_bgr` takes, in ``order``.
        top, fps, invoke_ms: see :func:`draw_overlay`.
        roi: an :class:`edgecnn.geometry.Roi` in frame pixels, or None.
    Returns:
        a new (H', W', 3) uint8 BGR image.
    """
    out = enlarge(to_bgr(image, order))
    if roi is not None:
        f = out.shape[0] / image.shape[0]
        x0, y0 = int(roi.x * f), int(roi.y * f)
        x1, y1 = int((roi.x + roi.w) * f) - 1, int((roi.y + roi.h) * f) - 1
        import_cv2().rectangle(out, (x0, y0), (x1, y1), ROI_COLOUR, max(1, out.shape[0] // 240))
    return draw_overlay(out, top, fps, invoke_ms)
