"""Which resize keeps an area average's quality at frame speed? Speed and top-1 on real photos, side by side.

    python tools/resize_study.py build/models/mnv2_224_uint8.tflite build/models/mnv2_96_int8.tflite

For each model (a photo classifier from tools/build_photo_model.py) and each simulated camera size (640x480,
1280x720), every flowers5 test photo is made into a camera frame (the photo centre-cropped to the frame's aspect
ratio and enlarged to it with INTER_CUBIC, as a camera that fills its frame with the subject), then centre-cropped
to the model's aspect ratio and resized by each candidate below, and classified with edgecnn's Classifier (the
same normalise + quantize table, 1 thread). Printed per candidate: p50 ms of the resize alone on one frame
(median of interleaved rounds, 1 OpenCV thread), top-1 on the 600 test photos (and, paired with the direct
INTER_AREA, how many photos it gets right that area gets wrong and the reverse), and how far its pixels are from a
direct INTER_AREA on frames with full-resolution detail (mosaics of the photos at their native size: enlarged
photos are smooth, so they cannot show aliasing; these can), as mean absolute difference in grey levels.

Candidates:
  area         cv2.INTER_AREA in one call (the reference area average; slow generic path for non-integer ratios)
  halve4+area  halve by 2x2 means while >= 4x the output, then INTER_AREA (edgecnn's rule before this study)
  halve+linear halve by 2x2 means while >= 2x the output, then INTER_LINEAR (edgecnn's rule now)
  halve+nearest halve by 2x2 means while >= 2x the output, then INTER_NEAREST
  halve+area   halve by 2x2 means while >= 2x the output, then INTER_AREA
  pyr+linear   cv2.pyrDown (5x5 Gaussian) while >= 2x the output, then INTER_LINEAR
  linear       INTER_LINEAR in one call (what the bare loop does; aliases when shrinking more than 2x)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import click
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edgecnn.config import RuntimeOptions  # noqa: E402
from edgecnn.preprocess import _resize_to, crop_box, read_image  # noqa: E402
from edgecnn.runtime import Classifier  # noqa: E402
from make_video import photo_frame, test_photos  # noqa: E402

from shared_data import FLOWERS5  # noqa: E402  (tools/ is on sys.path)

DATA = FLOWERS5
FRAMES = {"640x480": (480, 640), "1280x720": (720, 1280)}


def _halve_while(image, oh, ow, factor, step):
    h, w = image.shape[:2]
    while h >= factor * oh and w >= factor * ow:
        image = step(image[:h - h % 2, :w - w % 2])
        h, w = image.shape[:2]
    return image


def _area_half(image):
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


CANDIDATES = {
    "area": lambda im, oh, ow: cv2.resize(im, (ow, oh), interpolation=cv2.INTER_AREA),
    "halve4+area": lambda im, oh, ow: cv2.resize(_halve_while(im, oh, ow, 4, _area_half), (ow, oh),
                                                 interpolation=cv2.INTER_AREA),
    "halve+linear": _resize_to,
    "halve+nearest": lambda im, oh, ow: cv2.resize(_halve_while(im, oh, ow, 2, _area_half), (ow, oh),
                                                   interpolation=cv2.INTER_NEAREST),
    "halve+area": lambda im, oh, ow: cv2.resize(_halve_while(im, oh, ow, 2, _area_half), (ow, oh),
                                                interpolation=cv2.INTER_AREA),
    "pyr+linear": lambda im, oh, ow: cv2.resize(_halve_while(im, oh, ow, 2, cv2.pyrDown), (ow, oh),
                                                interpolation=cv2.INTER_LINEAR),
    "linear": lambda im, oh, ow: cv2.resize(im, (ow, oh), interpolation=cv2.INTER_LINEAR),
}


def load_test_photos(data: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """flowers5's test split (tools/make_video.py's rule): RGB photos and class indices."""
    paths, labels, _ = test_photos(data)
    return [read_image(p) for p in paths], labels


def camera_frame(photo: np.ndarray, fh: int, fw: int) -> np.ndarray:
    """The photo filling an (fh, fw) RGB frame (tools/make_video.py's photo_frame, back in RGB)."""
    return cv2.cvtColor(photo_frame(photo, (fw, fh)), cv2.COLOR_BGR2RGB)


def mosaic(photos: list[np.ndarray], fh: int, fw: int, start: int) -> np.ndarray:
    """An (fh, fw) frame tiled with 120x120 centre crops of the photos at their native resolution."""
    rows, cols = -(-fh // 120), -(-fw // 120)
    tiles = []
    for k in range(rows * cols):
        p = photos[(start + k) % len(photos)]
        top, left, bh, bw = crop_box(*p.shape[:2], 1, 1)
        tiles.append(cv2.resize(p[top:top + bh, left:left + bw], (120, 120), interpolation=cv2.INTER_AREA))
    grid = np.vstack([np.hstack(tiles[r * cols:(r + 1) * cols]) for r in range(rows)])
    return np.ascontiguousarray(grid[:fh, :fw])


def square_crop(frame: np.ndarray, oh: int, ow: int) -> np.ndarray:
    top, left, bh, bw = crop_box(*frame.shape[:2], oh, ow)
    return frame[top:top + bh, left:left + bw]


def time_p50(fn, runs: int) -> float:
    for _ in range(10):
        fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        t.append(time.perf_counter_ns() - t0)
    return statistics.median(t) / 1e6


def hits(clf: Classifier, crops: list[np.ndarray], labels: np.ndarray, resize) -> np.ndarray:
    """Per photo: True where the top-1 class is right."""
    h, w = clf.preprocessing.height, clf.preprocessing.width
    out = []
    for crop, y in zip(crops, labels):
        raw = clf.invoke(clf.tensor_from_pixels(resize(crop, h, w)))
        out.append(int(np.argmax(clf.scores(raw))) == int(y))
    return np.array(out)


@click.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DATA,
              show_default=True)
@click.option("--runs", default=300, show_default=True, help="Timed resizes per candidate and round.")
@click.option("--rounds", default=3, show_default=True, help="Interleaved timing rounds (median reported).")
def main(models, data, runs, rounds):
    """Measure resize candidates: speed, top-1 on real photos, distance from INTER_AREA (module docstring)."""
    cv2.setNumThreads(1)
    photos, labels = load_test_photos(data)
    click.echo(f"{len(photos)} test photos; OpenCV {cv2.__version__}, 1 thread")
    for path in models:
        clf = Classifier(path, RuntimeOptions(threads=1, resize="center-crop"))
        oh, ow = clf.preprocessing.height, clf.preprocessing.width
        for fname, (fh, fw) in FRAMES.items():
            crops = [square_crop(camera_frame(p, fh, fw), oh, ow) for p in photos]
            detail = [square_crop(mosaic(photos, fh, fw, 7 * i), oh, ow) for i in range(20)]
            ref = [CANDIDATES["area"](d, oh, ow).astype(np.int16) for d in detail]
            times = {k: [] for k in CANDIDATES}
            for r in range(rounds):
                for k in (list(CANDIDATES) if r % 2 == 0 else list(CANDIDATES)[::-1]):
                    times[k].append(time_p50(lambda: CANDIDATES[k](detail[0], oh, ow), runs))
            click.echo(f"\n{path.name} ({oh}x{ow} {clf.input.dtype.name}), {fname} frames "
                       f"(crop {detail[0].shape[1]}x{detail[0].shape[0]} -> {ow}x{oh}):")
            click.echo(f"  {'candidate':13s} {'p50 ms':>7s} {'top-1':>7s} {'vs area +/-':>11s} {'|d| vs area':>12s} "
                       f"{'max |d|':>8s}")
            base = hits(clf, crops, labels, CANDIDATES["area"])
            for k, fn in CANDIDATES.items():
                d = [np.abs(fn(x, oh, ow).astype(np.int16) - r) for x, r in zip(detail, ref)]
                h = hits(clf, crops, labels, fn)
                # Photos this candidate gets right and area wrong (+), and the reverse (-): the paired difference.
                paired = f"+{int(np.sum(h & ~base))}/-{int(np.sum(base & ~h))}"
                click.echo(f"  {k:13s} {statistics.median(times[k]):7.3f} {h.mean():7.4f} {paired:>11s} "
                           f"{float(np.mean([x.mean() for x in d])):12.2f} {int(max(x.max() for x in d)):8d}")


if __name__ == "__main__":
    main()
