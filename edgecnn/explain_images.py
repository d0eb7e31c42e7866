"""Drawing for ``edgecnn explain``: feature-map grids, filter images, the occlusion overlay, PNG encoding.

Pure functions from numpy arrays to (H, W, 3) uint8 RGB images, drawn with OpenCV (a device dependency already);
no plotting library is needed on the device.
"""

from __future__ import annotations

import numpy as np

from edgecnn.opencv import import_cv2

#: Smallest side in pixels a feature-map tile, filter or input image is enlarged to (nearest neighbour, so every
#: activation stays a visible square).
MIN_TILE = 48
#: Gap between tiles in pixels, and its colour (RGB).
GAP = 2
GAP_RGB = (255, 255, 255)
#: Tiles per row in a feature-map grid.
GRID_COLUMNS = 8
#: Brightness the occlusion spotlight leaves where hiding the region does not lower the score (0..1).
SPOTLIGHT_DIM = 0.25


def normalise(channel: np.ndarray) -> np.ndarray:
    """Scale one channel on its own to 0..255: min -> 0, max -> 255; a constant channel -> 0.

    Args:
        channel: (H, W) float.
    Returns:
        (H, W) uint8.
    """
    c = np.asarray(channel, np.float64)
    lo, hi = float(c.min()), float(c.max())
    if hi <= lo:
        return np.zeros(c.shape, np.uint8)
    return np.round((c - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def colour_map(gray: np.ndarray, name: str = "VIRIDIS") -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) uint8 RGB through an OpenCV colour map (``cv2.COLORMAP_<name>``)."""
    cv2 = import_cv2()
    bgr = cv2.applyColorMap(np.ascontiguousarray(gray), getattr(cv2, f"COLORMAP_{name}"))
    return np.ascontiguousarray(bgr[:, :, ::-1])


def enlarge(image: np.ndarray, min_side: int = MIN_TILE) -> np.ndarray:
    """Enlarge by a whole factor (nearest neighbour) until the short side is at least ``min_side`` pixels.

    Args:
        image: (H, W) or (H, W, C) uint8.
    Returns:
        the same layout, each pixel a factor x factor square.
    """
    factor = max(1, -(-int(min_side) // max(1, min(image.shape[:2]))))
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) uint8 -> (H, W, 3) uint8 RGB."""
    if image.ndim == 2:
        image = image[:, :, None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def grid(tiles: list[np.ndarray], columns: int = GRID_COLUMNS, gap: int = GAP) -> np.ndarray:
    """Lay equally sized (h, w, 3) uint8 tiles out in rows of ``columns``, ``gap`` pixels apart (white).

    Returns:
        (rows*(h+gap)-gap, cols*(w+gap)-gap, 3) uint8 RGB.
    Raises:
        ValueError: no tiles, or tiles of different shapes.
    """
    if not tiles:
        raise ValueError("no tiles to lay out")
    h, w = tiles[0].shape[:2]
    if any(t.shape != tiles[0].shape for t in tiles):
        raise ValueError(f"tiles have different shapes, expected all {tiles[0].shape}")
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    out = np.empty((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), np.uint8)
    out[:] = GAP_RGB
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = t
    return out


def feature_map_grid(values: np.ndarray, channels: np.ndarray, min_side: int = MIN_TILE) -> np.ndarray:
    """The listed channels of a feature map, each scaled on its own (:func:`normalise`), viridis-coloured
    (dark: the channel's lowest value, yellow: its highest), in the order given.

    Args:
        values: (H, W, C) float32.
        channels: channel indices, e.g. from :func:`edgecnn.explain.strongest_channels`.
    Returns:
        (H', W', 3) uint8 RGB grid.
    """
    return grid([enlarge(colour_map(normalise(values[:, :, c])), min_side) for c in channels])


def filter_tiles(weights: np.ndarray) -> list[np.ndarray]:
    """First-layer kernels as images: each filter scaled on its own so that 0 is mid grey and its largest |w| is
    black or full intensity (``0.5 + 0.5 * w / max|w|``). Three input channels are drawn as RGB colour, one as
    grey, any other count as the mean over input channels in grey.

    Args:
        weights: (out_c, kh, kw, in_c) float32, input channels in the model's order (RGB for edgecnn models).
    Returns:
        out_c tiles of (kh', kw', 3) uint8 RGB, enlarged to :data:`MIN_TILE`.
    """
    tiles = []
    for w in np.asarray(weights, np.float64):
        if w.shape[-1] != 3:
            w = w.mean(axis=-1, keepdims=True)
        peak = float(np.abs(w).max())
        img = 0.5 + 0.5 * w / peak if peak > 0 else np.full(w.shape, 0.5)
        tiles.append(enlarge(to_rgb(np.round(img * 255).astype(np.uint8)), MIN_TILE))
    return tiles


def heat_overlay(pixels: np.ndarray, heat: np.ndarray, min_side: int = 192) -> np.ndarray:
    """The occlusion map as a spotlight on the image: each pixel keeps ``DIM + (1 - DIM) * level`` of its
    brightness, where level is its drop over the largest drop (0..1; rises count 0), so what the class depends on
    stays bright and the rest fades.

    Args:
        pixels: (h, w, c) uint8 model-sized image.
        heat: (h, w) float drops.
        min_side: enlarge to at least this many pixels on the short side.
    Returns:
        (H, W, 3) uint8 RGB.
    """
    base = enlarge(to_rgb(pixels), min_side).astype(np.float64)
    peak = float(heat.max())
    level = np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros(heat.shape, np.float64)
    level = enlarge(level, min_side)[:, :, None]
    return np.round(base * (SPOTLIGHT_DIM + (1 - SPOTLIGHT_DIM) * level)).astype(np.uint8)


def heat_image(heat: np.ndarray, min_side: int = 192) -> np.ndarray:
    """The occlusion map alone: drops from 0 (black) to the largest drop (yellow-white), inferno; increases
    (negative drops) clip to black.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    peak = float(heat.max())
    level = np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(heat, dtype=np.float64)
    return enlarge(colour_map(np.round(level * 255).astype(np.uint8), "INFERNO"), min_side)


def png_bytes(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB (or (H, W) gray) -> PNG file bytes.

    Raises:
        ValueError: OpenCV cannot encode the array.
    """
    cv2 = import_cv2()
    arr = rgb[:, :, ::-1] if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError(f"cannot encode an image of shape {rgb.shape} as PNG")
    return buf.tobytes()
